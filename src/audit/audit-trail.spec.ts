import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Registry } from 'prom-client';
import { WorkerMetrics } from '../observability/worker-metrics.js';
import type { AuditEvent, AuditSink } from './audit-event.js';
import { AuditTrail, type AuditTrailOptions } from './audit-trail.js';

/** A sink that records every batch and can be told to fail the next writes. */
class RecordingSink implements AuditSink {
  readonly batches: AuditEvent[][] = [];
  failuresLeft = 0;
  async write(events: readonly AuditEvent[]): Promise<void> {
    await Promise.resolve();
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new Error('database away');
    }
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
  maxRetryDelayMs: 8000,
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
    for (let index = 0; index < 99; index++) trail.record(event(index));
    await jest.advanceTimersByTimeAsync(0);
    expect(sink.batches).toHaveLength(0);

    trail.record(event(99));
    await jest.advanceTimersByTimeAsync(0);
    expect(sink.batches.map((batch) => batch.length)).toEqual([100]);
    expect(trail.bufferedEvents).toBe(0);
  });

  it('writes fewer than 100 events 1 s after the first of them was buffered', async () => {
    trail.record(event(1));
    await jest.advanceTimersByTimeAsync(500);
    trail.record(event(2));
    await jest.advanceTimersByTimeAsync(499);
    expect(sink.batches).toHaveLength(0);

    await jest.advanceTimersByTimeAsync(1);
    expect(sink.batches.map((batch) => batch.map((item) => item.userId))).toEqual([['user-1', 'user-2']]);
  });

  it('keeps the events of a failed flush, in order, and writes them on a later attempt', async () => {
    sink.failuresLeft = 1;
    for (let index = 0; index < 100; index++) trail.record(event(index));
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
    for (let index = 0; index < 260; index++) trail.record(event(index));
    await jest.advanceTimersByTimeAsync(0);
    expect(trail.bufferedEvents).toBe(250);
    expect(trail.dropped).toBe(10);
    expect(await metricValue(registry, 'flashsale_audit_events_dropped_total')).toBe(10);
  });

  it('writes everything still buffered on close', async () => {
    for (let index = 0; index < 42; index++) trail.record(event(index));
    await trail.close(Date.now() + 5000);
    expect(sink.written).toBe(42);
    expect(trail.bufferedEvents).toBe(0);
  });

  it('retries a failing flush on close until the deadline, then gives up saying how many were not written', async () => {
    sink.failuresLeft = 2;
    for (let index = 0; index < 5; index++) trail.record(event(index));
    const closed = trail.close(Date.now() + 10_000);
    await jest.advanceTimersByTimeAsync(10_000);
    await closed;
    expect(sink.written).toBe(5);
  });

  it('returns the same promise when closed twice', () => {
    const deadline = Date.now() + 1000;
    expect(trail.close(deadline)).toBe(trail.close(deadline));
  });
});
