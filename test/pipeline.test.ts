import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { waitFor } from './support/harness.js';
import { purchase, TestWorld } from './support/test-worker.js';

describe('a worker persisting purchases', () => {
  let world: TestWorld;

  beforeAll(async () => {
    world = await TestWorld.create('pipeline');
    await world.startWorker({ BATCH_SIZE: 50, BATCH_WAIT_MS: 5 });
  });
  afterAll(() => world.close());

  it('stores one order per unique (sale, user) and acks every message, duplicates included', async () => {
    const unique = Array.from({ length: 300 }, () => purchase({ saleId: 'a1b2c3d4-0000-4000-8000-000000000001' }));
    const duplicates = unique.slice(0, 60).map((body) => ({ ...body, timestamp: new Date().toISOString() }));
    await world.publish([...unique, ...duplicates, ...unique.slice(100, 110)]);

    await waitFor('300 orders', async () => (await world.orders()) === 300);
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
    expect(await world.count('SELECT count(DISTINCT (sale_id, user_id)) FROM orders')).toBe(300);
  });
});
