import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { waitFor } from './support/harness.js';
import { purchase, TestWorld } from './support/test-worker.js';

describe('batched persistence', () => {
  let world: TestWorld;

  beforeEach(async () => {
    world = await TestWorld.create('batching');
    await world.declareTopology();
  });
  afterEach(() => world.close());

  it('settles a mixed batch: new, duplicate of an existing order, duplicate inside the batch, and poison', async () => {
    const saleId = randomUUID();
    const existing = purchase({ saleId });
    await world.sql.query('INSERT INTO orders (sale_id, user_id, purchased_at) VALUES ($1, $2, now())', [
      existing.saleId,
      existing.userId,
    ]);
    const fresh = Array.from({ length: 5 }, () => purchase({ saleId }));
    const twice = purchase({ saleId });
    // Published before the worker starts, so all of it arrives in one batch.
    await world.publishRaw([
      JSON.stringify(existing),
      ...fresh.map((body) => JSON.stringify(body)),
      JSON.stringify(twice),
      JSON.stringify({ ...twice, timestamp: new Date().toISOString() }),
      '{"saleId": "not-a-uuid"}',
    ]);
    await world.startWorker({ BATCH_SIZE: 100, BATCH_WAIT_MS: 200 });

    const [dead] = await world.deadLetters(1);
    expect(dead?.properties.headers?.['x-rejection-reason']).toContain('saleId must be a UUID');
    await waitFor('7 orders', async () => (await world.orders()) === 7);
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
    await waitFor('9 audit events', async () => (await world.count('SELECT count(*) FROM audit_logs')) === 9);
    const events = await world.sql.query<{ event: string; count: string }>(
      'SELECT event, count(*) FROM audit_logs GROUP BY event ORDER BY event',
    );
    expect(events.rows).toEqual([
      { event: 'MESSAGE_REJECTED', count: '1' },
      { event: 'ORDER_CONFIRMED', count: '6' },
      { event: 'ORDER_DUPLICATE', count: '2' },
    ]);
    expect(await world.count('SELECT count(*) FROM orders WHERE user_id = $1', [twice.userId])).toBe(1);
  });

  it('isolates a row the database refuses, dead-letters it with the reason, and stores the rest of its batch', async () => {
    await world.sql.query(
      "ALTER TABLE orders ADD CONSTRAINT test_no_banned_users CHECK (user_id <> 'banned')",
    );
    const saleId = randomUUID();
    const good = Array.from({ length: 20 }, () => purchase({ saleId }));
    await world.publish([...good.slice(0, 10), purchase({ saleId, userId: 'banned' }), ...good.slice(10)]);
    await world.startWorker({ BATCH_SIZE: 100, BATCH_WAIT_MS: 200 });

    const [dead] = await world.deadLetters(1);
    expect(JSON.parse(dead?.content.toString() ?? '{}')).toMatchObject({ userId: 'banned' });
    expect(dead?.properties.headers?.['x-rejection-code']).toBe('REFUSED_BY_DATABASE');
    expect(dead?.properties.headers?.['x-rejection-reason']).toContain('test_no_banned_users');
    expect(dead?.properties.headers?.['x-rejection-reason']).toMatch(
      /^database refused the order \(23514\): [^\n]*$/,
    );
    await waitFor('20 orders', async () => (await world.orders()) === 20);
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
  });

  it('acks a redelivered batch whose insert had committed as duplicates, without a second row', async () => {
    // The state after a worker committed a batch and died before its acks reached the broker.
    const saleId = randomUUID();
    const batch = Array.from({ length: 30 }, () => purchase({ saleId }));
    for (const body of batch) {
      await world.sql.query('INSERT INTO orders (sale_id, user_id, purchased_at) VALUES ($1, $2, $3)', [
        body.saleId,
        body.userId,
        body.timestamp,
      ]);
    }
    await world.publish(batch);
    await world.startWorker();

    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
    await waitFor(
      '30 duplicate audit events',
      async () =>
        (await world.count("SELECT count(*) FROM audit_logs WHERE event = 'ORDER_DUPLICATE'")) === 30,
    );
    expect(await world.orders()).toBe(30);
  });

  it('writes a half-filled batch on shutdown instead of waiting for it to fill', async () => {
    const worker = await world.startWorker({ BATCH_SIZE: 1000, BATCH_WAIT_MS: 10_000 });
    await world.publish(Array.from({ length: 12 }, () => purchase({ saleId: randomUUID() })));
    await waitFor('12 messages received', () => worker.worker.inFlight === 12);
    expect(await world.orders()).toBe(0);

    expect(await worker.stop('SIGTERM')).toBe(0);
    expect(await world.orders()).toBe(12);
    expect(await world.count("SELECT count(*) FROM audit_logs WHERE event = 'ORDER_CONFIRMED'")).toBe(12);
    expect(await world.queueDepth()).toBe(0);
  });
});
