import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { METRIC, METRIC_NAMES } from '../../src/observability/metric-names.js';
import type { RunningWorker } from '../../src/worker.module.js';
import { waitFor } from '../support/harness.js';
import { purchase, TestWorld } from '../support/test-worker.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples and declared families of a Prometheus text exposition (format 0.0.4). */
class Exposition {
  readonly samples: Sample[] = [];
  readonly families = new Map<string, string>();

  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      const declared = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (declared) this.families.set(declared[1] as string, declared[2] as string);
      const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!sample) continue;
      const labels: Record<string, string> = {};
      for (const [, key, value] of (sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
        labels[key as string] = value as string;
      }
      this.samples.push({ name: sample[1] as string, labels, value: Number(sample[3]) });
    }
  }

  /** The value of the one sample named `name` whose labels include `labels`; undefined when absent. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const matches = this.samples.filter(
      (sample) =>
        sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    );
    if (matches.length > 1)
      throw new Error(`${matches.length} samples of ${name} match ${JSON.stringify(labels)}`);
    return matches[0]?.value;
  }
}

async function scrape(worker: RunningWorker): Promise<Exposition> {
  const response = await fetch(`http://127.0.0.1:${worker.port}/metrics`);
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  return new Exposition(await response.text());
}

const POISON = [
  'not json',
  '[1, 2, 3]',
  JSON.stringify({ saleId: 'not-a-uuid', userId: 'user-poison-1', timestamp: new Date().toISOString() }),
  JSON.stringify({ saleId: randomUUID(), timestamp: new Date().toISOString() }),
  JSON.stringify({ saleId: randomUUID(), userId: 'user-poison-2', timestamp: 'yesterday' }),
];

describe('the /metrics endpoint after a known workload of 40 new purchases, 10 duplicates and 5 poison messages', () => {
  let world: TestWorld;
  let worker: RunningWorker;
  let metrics: Exposition;

  beforeAll(async () => {
    world = await TestWorld.create('metrics');
    worker = await world.startWorker({
      BATCH_SIZE: 20,
      BATCH_WAIT_MS: 5,
      AUDIT_BATCH_SIZE: 1000,
      AUDIT_FLUSH_INTERVAL_MS: 200,
      QUEUE_DEPTH_POLL_MS: 100,
    });
    const saleId = randomUUID();
    const originals = Array.from({ length: 40 }, () => purchase({ saleId }));
    await world.publish(originals);
    // The duplicates go out once the originals are committed, so no batch holds two purchases of one
    // order: every message is then one row of exactly one INSERT, and the batch sizes add up to 50.
    await waitFor('40 orders', async () => (await world.orders()) === 40);
    await world.publish(
      originals.slice(0, 10).map((original) => ({ ...original, timestamp: new Date().toISOString() })),
    );
    await world.publishRaw(POISON);
    metrics = await waitFor('every message settled and every audit event flushed', async () => {
      const scraped = await scrape(worker);
      const settled = ['confirmed', 'duplicate', 'rejected'].map((outcome) =>
        scraped.value(METRIC.messages, { outcome }),
      );
      const flushed = scraped.value(METRIC.auditFlushed);
      return settled.join() === '40,10,5' && flushed === 55 ? scraped : undefined;
    });
  });
  afterAll(() => world.close());

  it('counts each message once under its outcome: 40 confirmed, 10 duplicate, 5 rejected, none retried or failed', () => {
    expect(metrics.value(METRIC.messages, { outcome: 'confirmed' })).toBe(40);
    expect(metrics.value(METRIC.messages, { outcome: 'duplicate' })).toBe(10);
    expect(metrics.value(METRIC.messages, { outcome: 'rejected' })).toBe(5);
    expect(metrics.value(METRIC.messages, { outcome: 'retried' }) ?? 0).toBe(0);
    expect(metrics.value(METRIC.messages, { outcome: 'failed' }) ?? 0).toBe(0);
  });

  it('observes every written row in the batch-size histogram and times each INSERT', () => {
    const batches = metrics.value(`${METRIC.batchSize}_count`) ?? 0;
    // At least one INSERT for the originals (two, at 20 a batch) and one for the duplicates.
    expect(batches).toBeGreaterThanOrEqual(3);
    expect(batches).toBeLessThanOrEqual(50);
    expect(metrics.value(`${METRIC.batchSize}_sum`)).toBe(50);
    expect(metrics.value(`${METRIC.batchSize}_bucket`, { le: '25' })).toBe(batches);
    expect(metrics.value(`${METRIC.dbWriteDuration}_count`)).toBe(batches);
    expect(metrics.value(`${METRIC.dbWriteDuration}_sum`)).toBeGreaterThan(0);
  });

  it('observes publish-to-commit latency once per stored or duplicate purchase, never for poison', () => {
    expect(metrics.value(`${METRIC.publishToCommit}_count`)).toBe(50);
    expect(metrics.value(`${METRIC.publishToCommit}_bucket`, { le: '+Inf' })).toBe(50);
    // Everything was published and committed within this test's own run time.
    expect(metrics.value(`${METRIC.publishToCommit}_bucket`, { le: '60' })).toBe(50);
  });

  it('counts 55 audit events flushed after the flush interval, matching the audit_logs table, with none dropped', async () => {
    expect(metrics.value(METRIC.auditFlushed)).toBe(55);
    expect(await world.count('SELECT count(*) FROM audit_logs')).toBe(55);
    expect(metrics.value(METRIC.auditBufferSize)).toBe(0);
    expect(metrics.value(METRIC.auditDropped)).toBe(0);
    expect(metrics.value(METRIC.auditFlushFailures)).toBe(0);
  });

  it('reports nothing in flight, consuming, and the database circuit closed once the workload is done', async () => {
    const settledNow = await scrape(worker);
    expect(settledNow.value(METRIC.inFlight)).toBe(0);
    expect(settledNow.value(METRIC.consumerPaused)).toBe(0);
    expect(settledNow.value(METRIC.circuitOpen)).toBe(0);
  });

  it('reports the purchase queue and DLQ depths from its periodic passive checks', async () => {
    const polled = await waitFor('depth gauges showing an empty queue and 5 dead letters', async () => {
      const scraped = await scrape(worker);
      const depths = [
        scraped.value(METRIC.queueDepth, { queue: world.queue }),
        scraped.value(METRIC.dlqDepth, { queue: world.deadLetterQueue }),
      ];
      return depths.join() === '0,5' ? scraped : undefined;
    });
    expect(polled.value(METRIC.queueDepth, { queue: world.queue })).toBe(0);

    expect(await world.drainDeadLetters()).toHaveLength(5);
    await waitFor('the DLQ depth gauge to follow the drained DLQ', async () => {
      return (await scrape(worker)).value(METRIC.dlqDepth, { queue: world.deadLetterQueue }) === 0;
    });
  });

  it("exports Node's default process metrics beside the worker's own", () => {
    expect(metrics.value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(metrics.families.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
  });

  it('says which version runs, on which Node, as flashsale_build_info with the value 1', () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const build = metrics.samples.filter((sample) => sample.name === METRIC.buildInfo);
    expect(build).toEqual([{ name: METRIC.buildInfo, labels: { version, node: process.version }, value: 1 }]);
  });

  it('counts no reply when no message asked for one, each result from 0', () => {
    for (const result of ['sent', 'failed', 'returned']) {
      expect({ result, value: metrics.value(METRIC.replies, { result }) }).toEqual({ result, value: 0 });
    }
  });

  it('declares every metric name of the contract, each with its type', () => {
    const expectedTypes: Record<string, string> = {
      [METRIC.messages]: 'counter',
      [METRIC.batchSize]: 'histogram',
      [METRIC.dbWriteDuration]: 'histogram',
      [METRIC.publishToCommit]: 'histogram',
      [METRIC.auditFlushed]: 'counter',
      [METRIC.auditDropped]: 'counter',
      [METRIC.auditFlushFailures]: 'counter',
      [METRIC.ackFrames]: 'counter',
      [METRIC.dbWriteFailures]: 'counter',
      [METRIC.auditUnstorable]: 'counter',
      [METRIC.publishesReturned]: 'counter',
      [METRIC.replies]: 'counter',
    };
    for (const name of METRIC_NAMES) {
      expect({ name, type: metrics.families.get(name) }).toEqual({
        name,
        type: expectedTypes[name] ?? 'gauge',
      });
      expect(metrics.samples.some((sample) => sample.name.startsWith(name))).toBe(true);
    }
  });
});
