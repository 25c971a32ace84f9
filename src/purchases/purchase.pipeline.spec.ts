import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { ShutdownSignal } from '../common/shutdown-signal.js';
import { parseSettings } from '../config/settings.js';
import { CircuitBreaker } from '../database/circuit-breaker.js';
import { WorkerMetrics } from '../observability/worker-metrics.js';
import type { Settled } from './outcome.js';
import type { OrderInserter } from './purchase-batcher.js';
import { PurchasePipeline } from './purchase.pipeline.js';
import { holdsWithin } from '../../test/support/holds-within.js';
import { orderKey } from '../../test/support/order-key.js';
import type { Purchase } from '@flashsale/contract';

const SALE_ID = '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11';

/** An inserter that stores every order in memory, as a fresh database would. */
class MemoryOrders implements OrderInserter {
  readonly keys = new Set<string>();
  inserts = 0;

  insert(purchases: readonly Purchase[]) {
    this.inserts++;
    const isNew = purchases.map((purchase) => {
      const key = orderKey(purchase);
      const added = !this.keys.has(key);
      this.keys.add(key);
      return added;
    });
    return Promise.resolve({ isNew, committedAt: isNew.includes(true) ? new Date() : undefined });
  }
}

function pipeline(orders: OrderInserter, calls: Settled<string>[][] = []) {
  const settings = parseSettings({ BATCH_SIZE: '3', BATCH_WAIT_MS: '1000' });
  const breaker = new CircuitBreaker(() => Promise.resolve(), {
    failureThreshold: 3,
    retryBaseMs: 1,
    retryMaxMs: 1,
  });
  return new PurchasePipeline<string>(
    settings,
    orders,
    breaker,
    new WorkerMetrics(new Registry()),
    new ShutdownSignal(),
    { settleBatch: (settled) => calls.push([...settled]) },
  );
}

const message = (body: unknown, contentType: unknown = 'application/json') => ({
  content: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
  properties: { contentType },
});

const purchase = (userId: string) => ({ saleId: SALE_ID, userId, timestamp: '2026-11-22T10:00:00Z' });

describe('PurchasePipeline', () => {
  it('settles an invalid message at once, on its own, without touching the database', () => {
    const orders = new MemoryOrders();
    const calls: Settled<string>[][] = [];
    const subject = pipeline(orders, calls);

    subject.process(message('not json'), 'm1');
    subject.process(message(purchase('u'), 'text/plain'), 'm2');

    expect(calls.map((call) => call.map(({ token, outcome }) => [token, outcome.kind]))).toEqual([
      [['m1', 'rejected']],
      [['m2', 'rejected']],
    ]);
    expect(orders.inserts).toBe(0);
  });

  it('settles valid purchases a whole batch per call, each with its token, duplicates included', async () => {
    const orders = new MemoryOrders();
    const calls: Settled<string>[][] = [];
    const subject = pipeline(orders, calls);

    subject.process(message(purchase('a')), 'm1');
    subject.process(message(purchase('b')), 'm2');
    subject.process(message({ ...purchase('a'), timestamp: '2026-11-22T10:05:00Z' }), 'm3');
    expect(await holdsWithin(() => calls.length === 1)).toBe(true);

    expect(orders.inserts).toBe(1);
    expect(calls.map((call) => call.map(({ token, outcome }) => [token, outcome.kind]))).toEqual([
      [
        ['m1', 'confirmed'],
        ['m2', 'confirmed'],
        ['m3', 'duplicate'],
      ],
    ]);
  });

  it('hands a message back to the broker when reading it fails in a way no rule foresaw', () => {
    const calls: Settled<string>[][] = [];
    const unreadable = { content: null as unknown as Buffer, properties: {} };
    pipeline(new MemoryOrders(), calls).process(unreadable, 'm1');
    expect(calls.map((call) => call.map(({ token, outcome }) => [token, outcome.kind]))).toEqual([
      [['m1', 'retry']],
    ]);
  });
});
