import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Registry } from 'prom-client';
import { WorkerMetrics } from '../observability/worker-metrics.js';
import type { AuditEvent, AuditSink } from './audit-event.js';
import { AuditTrail, type AuditTrailOptions } from './audit-trail.js';

/** What the database says of a row it cannot store (PostgreSQL: 22P05 for a NUL in jsonb). */
class RowRefused extends Error {
  readonly code = '22P05';
}

/**
 * A sink that records every batch and can be told to fail the next writes; like PostgreSQL, it refuses a
 * whole batch when any event of it is one of `refusedUserIds` (its reduced form too, if told so).
 */
class RecordingSink implements AuditSink {
  readonly batches: AuditEvent[][] = [];
  failuresLeft = 0;
  readonly refusedUserIds = new Set<string>();
  refuseReducedForm = false;
  attempts = 0;

  async write(events: readonly AuditEvent[]): Promise<void> {
    this.attempts++;
    await Promise.resolve();
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new Error('database away');
    }
    const refused = events.some(
      (event) =>
        event.userId !== null &&
        this.refusedUserIds.has(event.userId) &&
        (this.refuseReducedForm || !('userIdHex' in event.details)),
    );
    if (refused) throw new RowRefused('unsupported Unicode escape sequence');
    this.batches.push([...events]);
  }

  get written(): number {
    return this.batches.reduce((sum, batch) => sum + batch.length, 0);
  }
}

const options: AuditTrailOptions = {
  batchSize: 100,
  flushIntervalMs: 1000,
  maxBufferedEvents: 250,
  retryMaxMs: 8000,
  isRefusal: (error) => error instanceof RowRefused,
};

function event(index: number): AuditEvent {
  return {
    event: 'ORDER_CONFIRMED',
    saleId: null,
    userId: `user-${index}`,
    details: {},
    createdAt: new Date(0),
  };
}

async function metricValue(registry: Registry, name: string): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  return metric?.values[0]?.value ?? 0;
}

describe('AuditTrail', () => {
  let sink: RecordingSink;
  let registry: Registry;
  let trail: AuditTrail;

  beforeEach(() => {
    jest.useFakeTimers();
    sink = new RecordingSink();
    registry = new Registry();
    trail = new AuditTrail(sink, options, new WorkerMetrics(registry));
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('writes one batch as soon as 100 events are buffered, without waiting for the interval', async () => {
    for (let index = 0; index < 99; index++) trail.recordAll([event(index)]);
    await jest.advanceTimersByTimeAsync(0);
    expect(sink.batches).toHaveLength(0);

    trail.recordAll([event(99)]);
    await jest.advanceTimersByTimeAsync(0);
    expect(sink.batches.map((batch) => batch.length)).toEqual([100]);
    expect(trail.bufferedEvents).toBe(0);
  });

  it('writes fewer than 100 events 1 s after the first of them was buffered', async () => {
    trail.recordAll([event(1)]);
    await jest.advanceTimersByTimeAsync(500);
    trail.recordAll([event(2)]);
    await jest.advanceTimersByTimeAsync(499);
    expect(sink.batches).toHaveLength(0);

    await jest.advanceTimersByTimeAsync(1);
    expect(sink.batches.map((batch) => batch.map((item) => item.userId))).toEqual([['user-1', 'user-2']]);
  });

  it('keeps the events of a failed flush, in order, and writes them on a later attempt', async () => {
    sink.failuresLeft = 1;
    for (let index = 0; index < 100; index++) trail.recordAll([event(index)]);
    await jest.advanceTimersByTimeAsync(0);
    expect(sink.written).toBe(0);
    expect(trail.bufferedEvents).toBe(100);
    expect(await metricValue(registry, 'flashsale_audit_flush_failures_total')).toBe(1);

    await jest.advanceTimersByTimeAsync(2000);
    expect(sink.written).toBe(100);
    expect(sink.batches[0]?.[0]?.userId).toBe('user-0');
    expect(await metricValue(registry, 'flashsale_audit_events_flushed_total')).toBe(100);
  });

  it('drops and counts events past its bound instead of growing without limit', async () => {
    sink.failuresLeft = 1000;
    for (let index = 0; index < 260; index++) trail.recordAll([event(index)]);
    await jest.advanceTimersByTimeAsync(0);
    expect(trail.bufferedEvents).toBe(250);
    expect(await metricValue(registry, 'flashsale_audit_events_dropped_total')).toBe(10);
  });

  it('writes everything still buffered on close', async () => {
    for (let index = 0; index < 42; index++) trail.recordAll([event(index)]);
    await trail.close(Date.now() + 5000);
    expect(sink.written).toBe(42);
    expect(trail.bufferedEvents).toBe(0);
  });

  it('retries a failing flush on close until the deadline, then gives up saying how many were not written', async () => {
    sink.failuresLeft = 2;
    for (let index = 0; index < 5; index++) trail.recordAll([event(index)]);
    const closed = trail.close(Date.now() + 10_000);
    await jest.advanceTimersByTimeAsync(10_000);
    await closed;
    expect(sink.written).toBe(5);
  });

  it('returns the same promise when closed twice', () => {
    const deadline = Date.now() + 1000;
    expect(trail.close(deadline)).toBe(trail.close(deadline));
  });

  describe('when the database refuses one event of a batch', () => {
    it('writes every other event, and the refused one in a reduced form, without retrying the batch', async () => {
      sink.refusedUserIds.add('user-37');
      for (let index = 0; index < 100; index++) trail.recordAll([event(index)]);
      await jest.advanceTimersByTimeAsync(0);

      const written = sink.batches.flat();
      expect(written).toHaveLength(100);
      expect(written.filter((item) => item.userId !== 'user-37')).toHaveLength(99);
      const reduced = written.find((item) => item.userId === 'user-37');
      expect(reduced?.details).toEqual({
        reason: 'unstorable details',
        refusedWith: '22P05',
        userIdHex: [...'user-37'].map((c) => c.charCodeAt(0).toString(16).padStart(4, '0')).join(''),
      });
      // Bisection: log2(100) levels, not one write per event.
      expect(sink.attempts).toBeLessThan(20);
      expect(trail.bufferedEvents).toBe(0);
      expect(await metricValue(registry, 'flashsale_audit_events_unstorable_total')).toBe(1);
      expect(await metricValue(registry, 'flashsale_audit_flush_failures_total')).toBe(0);
      expect(await metricValue(registry, 'flashsale_audit_events_flushed_total')).toBe(100);
    });

    it('keeps the events behind it flowing on later flushes', async () => {
      sink.refusedUserIds.add('user-0');
      trail.recordAll([event(0)]);
      await jest.advanceTimersByTimeAsync(1000);
      for (let index = 1; index <= 5; index++) trail.recordAll([event(index)]);
      await jest.advanceTimersByTimeAsync(1000);
      expect(sink.batches.flat().map((item) => item.userId)).toEqual([
        'user-0',
        'user-1',
        'user-2',
        'user-3',
        'user-4',
        'user-5',
      ]);
    });

    it('drops and counts an event whose reduced form is refused too, and writes the rest', async () => {
      sink.refusedUserIds.add('user-3');
      sink.refuseReducedForm = true;
      for (let index = 0; index < 10; index++) trail.recordAll([event(index)]);
      await trail.flush();
      expect(sink.written).toBe(9);
      expect(await metricValue(registry, 'flashsale_audit_events_dropped_total')).toBe(1);
      expect(trail.bufferedEvents).toBe(0);
    });

    it('keeps what is not yet written when the database goes away in the middle of the bisection', async () => {
      sink.refusedUserIds.add('user-9');
      const write = sink.write.bind(sink);
      let calls = 0;
      sink.write = async (events) => {
        calls++;
        if (calls === 3) throw new Error('database away');
        return write(events);
      };
      for (let index = 0; index < 10; index++) trail.recordAll([event(index)]);
      await trail.flush();
      expect(sink.written + trail.bufferedEvents).toBe(10);
      await jest.advanceTimersByTimeAsync(5000);
      expect(sink.written).toBe(10);
      expect(new Set(sink.batches.flat().map((item) => item.userId)).size).toBe(10);
    });
  });
});
