import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { METRIC } from '../src/observability/metric-names.js';
import type { TestWorker } from './support/test-worker.js';
import { waitFor } from './support/harness.js';
import { purchase, scrapedMetric, TestWorld } from './support/test-worker.js';

describe('a worker persisting purchases', () => {
  let world: TestWorld;

  let worker: TestWorker;

  beforeAll(async () => {
    world = await TestWorld.create('pipeline');
    worker = await world.startWorker({ BATCH_SIZE: 50, BATCH_WAIT_MS: 5, DB_POOL_SIZE: 3 });
  });
  afterAll(() => world.close());

  it('has its whole pool connected before the first purchase arrives', async () => {
    const backends = await world.count(
      'SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
      [`flashsale-worker:${worker.settings.WORKER_ID}`],
    );
    expect(backends).toBe(3);
  });

  it('stores one order per unique (sale, user) and acks every message, duplicates included', async () => {
    const unique = Array.from({ length: 300 }, () =>
      purchase({ saleId: 'a1b2c3d4-0000-4000-8000-000000000001' }),
    );
    const duplicates = unique.slice(0, 60).map((body) => ({ ...body, timestamp: new Date().toISOString() }));
    await world.publish([...unique, ...duplicates, ...unique.slice(100, 110)]);

    await waitFor('300 orders', async () => (await world.orders()) === 300);
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
    expect(await world.count('SELECT count(DISTINCT (sale_id, user_id)) FROM orders')).toBe(300);
  });

  it('acks a committed batch with a few multiple-ack frames, not one frame per message', async () => {
    const framesBefore = await scrapedMetric(worker, METRIC.ackFrames);
    await world.publish(
      Array.from({ length: 200 }, () => purchase({ saleId: 'a1b2c3d4-0000-4000-8000-000000000003' })),
    );
    await waitFor(
      '200 orders of the sale',
      async () =>
        (await world.count(
          "SELECT count(*) FROM orders WHERE sale_id = 'a1b2c3d4-0000-4000-8000-000000000003'",
        )) === 200,
    );
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
    const frames = (await scrapedMetric(worker, METRIC.ackFrames)) - framesBefore;
    expect(frames).toBeGreaterThan(0);
    expect(frames).toBeLessThanOrEqual(20);
  });
});

describe('the audit trail after a graceful shutdown', () => {
  it('holds exactly one event per settled message: confirmed, duplicate and rejected', async () => {
    const world = await TestWorld.create('audit');
    try {
      // A long interval: nothing is flushed by time, so the rows below come from the flush on shutdown.
      const worker = await world.startWorker({ AUDIT_FLUSH_INTERVAL_MS: 60_000, AUDIT_BATCH_SIZE: 10_000 });
      const saleId = 'a1b2c3d4-0000-4000-8000-000000000002';
      const unique = Array.from({ length: 120 }, () => purchase({ saleId }));
      await world.publish([...unique, ...unique.slice(0, 30)]);
      await world.publishRaw(['{"not":"a purchase"}', 'garbage', '[]']);
      await waitFor(
        '120 orders and an empty queue',
        async () => (await world.orders()) === 120 && (await world.queueDepth()) === 0,
      );
      await waitFor('all settled', () => worker.worker.inFlight === 0);
      expect(await world.count('SELECT count(*) FROM audit_logs')).toBe(0);

      expect(await worker.stop('SIGTERM')).toBe(0);

      const events = await world.sql.query<{ event: string; count: string }>(
        'SELECT event, count(*) FROM audit_logs GROUP BY event ORDER BY event',
      );
      expect(events.rows).toEqual([
        { event: 'MESSAGE_REJECTED', count: '3' },
        { event: 'ORDER_CONFIRMED', count: '120' },
        { event: 'ORDER_DUPLICATE', count: '30' },
      ]);
      expect(
        await world.count(
          `SELECT count(*) FROM orders o WHERE (SELECT count(*) FROM audit_logs a
             WHERE a.event = 'ORDER_CONFIRMED' AND a.sale_id = o.sale_id AND a.user_id = o.user_id) = 1`,
        ),
      ).toBe(120);
    } finally {
      await world.close();
    }
  });
});
