import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { WorkerMetrics } from '../observability/worker-metrics.js';
import type { Outcome, Reported } from '../purchases/outcome.js';
import type { AuditEvent } from './audit-event.js';
import type { AuditTrail } from './audit-trail.js';
import { OutcomeReporter, type OutcomeReporterOptions } from './outcome.reporter.js';

const SALE = '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11';
let deliveryTag = 0;

const reported = (outcome: Outcome): Reported => ({
  outcome,
  facts: { messageId: `m-${++deliveryTag}`, deliveryTag, deliveryCount: 1, settled: true },
});
const poison = (count: number) =>
  Array.from({ length: count }, () =>
    reported({ kind: 'rejected', rejection: { code: 'NOT_JSON', reason: 'body is not JSON' } }),
  );
const handedBack = (count: number) =>
  Array.from({ length: count }, () => reported({ kind: 'retry', error: new Error('database away') }));
const confirmed = (count: number) =>
  Array.from({ length: count }, (_, index) =>
    reported({
      kind: 'confirmed',
      purchase: { saleId: SALE, userId: `user-${index}`, timestamp: new Date() },
      committedAt: new Date(),
    }),
  );

describe('OutcomeReporter', () => {
  let warnings: Record<string, unknown>[];
  let infos: Record<string, unknown>[];
  let audited: AuditEvent[];

  beforeEach(() => {
    warnings = [];
    infos = [];
    audited = [];
    jest.useFakeTimers();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((line: unknown) => {
      warnings.push(line as Record<string, unknown>);
    });
    jest.spyOn(Logger.prototype, 'log').mockImplementation((line: unknown) => {
      infos.push(line as Record<string, unknown>);
    });
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  const reporter = (options: Partial<OutcomeReporterOptions> = {}) =>
    new OutcomeReporter(
      { recordAll: (events: readonly AuditEvent[]) => audited.push(...events) } as unknown as AuditTrail,
      new WorkerMetrics(new Registry()),
      {
        workerId: 'w-1',
        debugEnabled: false,
        messageWarningsPerInterval: 3,
        summaryIntervalMs: 10_000,
        ...options,
      },
    );

  it('logs each dead-lettered or handed-back message at warn up to the limit, then counts the rest', () => {
    const outcomes = reporter();
    outcomes.report([...poison(2), ...confirmed(5), ...handedBack(4)]);

    expect(warnings.map((line) => line.msg)).toEqual([
      'message dead-lettered: body is not JSON',
      'message dead-lettered: body is not JSON',
      'message handed back to the broker for redelivery: database away',
    ]);
    jest.advanceTimersByTime(10_000);
    expect(infos).toEqual([
      expect.objectContaining({ msg: 'settled 11 messages', confirmed: 5, rejected: 2, retried: 4 }),
    ]);
    expect(warnings).toHaveLength(4);
    expect(warnings[3]).toEqual(
      expect.objectContaining({
        msg: expect.stringMatching(
          /^3 more messages dead-lettered or handed back were not logged one by one/,
        ),
        rejected: 0,
        retried: 3,
      }),
    );
  });

  it('audits every message whether or not it was logged', () => {
    reporter().report(poison(10));
    expect(audited.map((event) => event.event)).toEqual(Array(10).fill('MESSAGE_REJECTED'));
    expect(warnings).toHaveLength(3);
  });

  it('starts a new allowance with each interval', () => {
    const outcomes = reporter();
    outcomes.report(poison(5));
    jest.advanceTimersByTime(10_000);
    expect(warnings).toHaveLength(4); // three lines and the count of the two left out

    outcomes.report(poison(2));
    jest.advanceTimersByTime(10_000);
    expect(warnings.slice(4).map((line) => line.msg)).toEqual([
      'message dead-lettered: body is not JSON',
      'message dead-lettered: body is not JSON',
    ]);
  });

  it('writes the count of what was left out with the last summary at shutdown', () => {
    const outcomes = reporter({ messageWarningsPerInterval: 1 });
    outcomes.report(poison(4));
    outcomes.close();
    expect(warnings.at(-1)).toEqual(expect.objectContaining({ rejected: 3, retried: 0 }));
  });

  it('logs every one with a limit of 0', () => {
    reporter({ messageWarningsPerInterval: 0 }).report([...poison(50), ...handedBack(50)]);
    expect(warnings).toHaveLength(100);
  });
});
