import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { waitFor } from './support/harness.js';
import { purchase, TestWorld } from './support/test-worker.js';
import { WorkerProcess } from './support/worker-process.js';

describe('a worker killed with SIGKILL while it holds unacked messages', () => {
  let world: TestWorld;

  beforeAll(async () => {
    world = await TestWorld.create('crash');
    await world.declareTopology();
  });
  afterAll(() => world.close());

  it('loses nothing: after a restart every purchase is persisted exactly once', async () => {
    const env = Object.fromEntries(
      Object.entries({
        RABBITMQ_URL: world.rabbitUrl,
        DATABASE_URL: world.db.url,
        PURCHASE_QUEUE: world.queue,
        PREFETCH: 500,
        BATCH_SIZE: 100,
        LOG_LEVEL: 'warn',
      }).map(([key, value]) => [key, String(value)]),
    );
    const saleId = randomUUID();
    const bodies = Array.from({ length: 3000 }, () => purchase({ saleId }));
    await world.publish([...bodies, ...bodies.slice(0, 300)]);

    const first = WorkerProcess.start({ ...env, WORKER_ID: 'crash-1' });
    await waitFor('some orders committed', async () => (await world.orders()) > 0, { timeoutMs: 30_000 });
    first.kill('SIGKILL');
    const exit = await first.waitForExit();
    expect(exit.signal).toBe('SIGKILL');
    const committedBeforeKill = await world.orders();
    expect(committedBeforeKill).toBeLessThan(3000); // it died mid-stream, with work left

    const second = WorkerProcess.start({ ...env, WORKER_ID: 'crash-2' });
    try {
      await waitFor('3000 orders', async () => (await world.orders()) === 3000, { timeoutMs: 60_000 });
      await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0, {
        timeoutMs: 20_000,
      });
      expect(await world.count('SELECT count(DISTINCT user_id) FROM orders')).toBe(3000);
      expect(await world.drainDeadLetters()).toHaveLength(0);
    } finally {
      second.sigterm();
      expect((await second.waitForExit()).code).toBe(0);
    }
  });
});
