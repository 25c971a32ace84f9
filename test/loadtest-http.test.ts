import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PassThrough } from 'node:stream';
import { type RunningApi, startApi } from '../examples/flash-sale-api/src/api.js';
import { parseApiSettings } from '../examples/flash-sale-api/src/settings.js';
import { type HttpLoadTestOptions, runHttpLoadTest } from '../scripts/loadtest/http-load-test.js';
import { HTTP_POISON_KINDS } from '../scripts/loadtest/http-requests.js';
import { formatHttpSummary } from '../scripts/loadtest/http-summary.js';
import { LoadTestSetupError } from '../scripts/loadtest/settling.js';
import { uniqueName } from './support/harness.js';
import { TestWorld } from './support/test-worker.js';

/** `npm run loadtest -- --http` at CI size: the example API, an in-process worker, the real broker and database. */
function quietOutput(): NodeJS.WriteStream {
  const sink = new PassThrough();
  sink.resume();
  return sink as unknown as NodeJS.WriteStream;
}

function optionsFor(world: TestWorld, api: RunningApi, overrides: Partial<HttpLoadTestOptions> = {}) {
  return {
    url: api.url,
    rabbitUrl: world.rabbitUrl,
    databaseUrl: world.db.url,
    queue: world.queue,
    deadLetterQueue: world.deadLetterQueue,
    count: 2000,
    sales: 2,
    users: 1500,
    duplicateRate: 0.1,
    poisonRate: 0.05,
    seed: 11,
    connections: 20,
    durationS: 0,
    ratePerSecond: 0,
    waitForOrder: false,
    settleTimeoutMs: 20_000,
    quietMs: 2000,
    out: quietOutput(),
    ...overrides,
  } satisfies HttpLoadTestOptions;
}

describe('the HTTP load test', () => {
  let world: TestWorld;
  let api: RunningApi;

  const apiOn = (queue: string) =>
    startApi(parseApiSettings({ RABBITMQ_URL: world.rabbitUrl, PURCHASE_QUEUE: queue, HTTP_PORT: '0' }), {
      logger: false,
      host: '127.0.0.1',
    });

  beforeAll(async () => {
    world = await TestWorld.create('loadtest_http');
    await world.startWorker();
    api = await apiOn(world.queue);
  });

  afterAll(async () => {
    await api?.app.close();
    await world?.close();
  });

  it('fails, naming the purchases without an order, when nothing persists what the API accepted', async () => {
    // A queue and dead-letter queue of their own that no worker consumes.
    const channel = await world.openChannel();
    const queue = uniqueName('fsw.loadtest_http_unconsumed');
    await channel.assertQueue(queue, { durable: true });
    await channel.assertQueue(`${queue}.dlq`, { durable: true });
    const unconsumed = await apiOn(queue);
    try {
      const report = await runHttpLoadTest({
        ...optionsFor(world, unconsumed, { count: 200, poisonRate: 0, settleTimeoutMs: 500, quietMs: 500 }),
        queue,
        deadLetterQueue: `${queue}.dlq`,
      });
      expect(report.purchases.accepted).toBe(200);
      expect(report.orders).toBe(0);
      expect(report.missing.count).toBe(report.purchases.acceptedPairs);
      expect(report.pass).toBe(false);
      expect(formatHttpSummary(report)).toMatch(/^FAIL {2}.*accepted purchases have no order/m);
    } finally {
      await unconsumed.app.close();
      await channel.deleteQueue(queue);
      await channel.deleteQueue(`${queue}.dlq`);
      await channel.close();
    }
  });

  it('refuses to start when the queue does not exist', async () => {
    const queue = uniqueName('fsw.loadtest_http_missing');
    const refused = await runHttpLoadTest({ ...optionsFor(world, api), queue }).catch(
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(LoadTestSetupError);
    expect((refused as Error).message).toBe(
      `queue "${queue}" does not exist: start the worker first (npm run fleet)`,
    );
  });

  it('refuses to start when the orders cannot be read, naming the database without its password', async () => {
    const databaseUrl = 'postgresql://postgres:s3cret@127.0.0.1:1/flashsale';
    const refused = await runHttpLoadTest({ ...optionsFor(world, api), databaseUrl }).catch(
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(LoadTestSetupError);
    expect((refused as Error).message).toMatch(
      /^cannot read orders at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/flashsale: /,
    );
    expect((refused as Error).message).not.toContain('s3cret');
    expect((refused as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('drives 2 000 requests through the API and finds exactly one order per accepted purchase', async () => {
    const report = await runHttpLoadTest(optionsFor(world, api));
    const { http, purchases, poison } = report;
    expect(http.sent).toBe(2000);
    expect(http.answered).toBe(2000);
    expect(purchases.sent + poison.sent).toBe(2000);
    expect(http.statusCounts['202']).toBe(purchases.sent);
    expect((http.statusCounts['400'] ?? 0) + (http.statusCounts['413'] ?? 0)).toBe(poison.sent);
    expect(poison.sent).toBeGreaterThanOrEqual(HTTP_POISON_KINDS.length);
    expect(poison.refusedAsExpected).toBe(poison.sent);
    expect(purchases.accepted - purchases.acceptedPairs).toBeGreaterThan(100); // duplicates were sent
    expect(report.orders).toBe(purchases.acceptedPairs);
    expect(report.missing.count).toBe(0);
    expect(report.unexpected.count).toBe(0);
    expect(report.deadLettered).toBe(0);
    expect(http.latencyMs.p50).toBeLessThanOrEqual(http.latencyMs.p90);
    expect(http.latencyMs.p99).toBeLessThanOrEqual(http.latencyMs.max);
    expect(report.pass).toBe(true);
    const summary = formatHttpSummary(report);
    expect(summary).toMatch(/HTTP latency +p50 [\d.]+ ms +p90 [\d.]+ ms +p99 [\d.]+ ms +max [\d.]+ ms/);
    expect(summary).toContain(`202 × ${purchases.sent.toLocaleString('en-US')}`);
    expect(summary).toMatch(/^PASS {2}/m);
  });

  it("waits for each order's outcome with --wait: one 201 per order, 200 for each duplicate", async () => {
    const report = await runHttpLoadTest(
      optionsFor(world, api, { count: 300, users: 200, duplicateRate: 0.2, waitForOrder: true, seed: 12 }),
    );
    expect(report.pass).toBe(true);
    expect(report.http.statusCounts['201']).toBe(report.orders);
    expect(report.http.statusCounts['200']).toBe(report.purchases.accepted - report.orders);
    expect(report.http.statusCounts['202']).toBeUndefined();
  });

  it('stops sending after --duration, cutting off at most the request in flight on each connection', async () => {
    const report = await runHttpLoadTest(
      optionsFor(world, api, {
        count: 50_000,
        users: 50_000,
        durationS: 1,
        ratePerSecond: 300,
        connections: 10,
      }),
    );
    expect(report.http.sent).toBeGreaterThan(50);
    expect(report.http.sent).toBeLessThan(1000);
    expect(report.http.seconds).toBeLessThan(3);
    expect(report.http.unanswered).toBeLessThanOrEqual(10);
    expect(report.http.unansweredAllowed).toBe(10);
    expect(report.missing.count).toBe(0);
    expect(report.pass).toBe(true);
  });
});
