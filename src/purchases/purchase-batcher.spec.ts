import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { holdsWithin } from '../../test/support/holds-within.js';
import { CircuitBreaker } from '../database/circuit-breaker.js';
import { WorkerMetrics } from '../observability/worker-metrics.js';
import { orderKey } from '../../test/support/order-key.js';
import type { InsertedOrders } from '../database/order.writer.js';
import type { Settled } from './outcome.js';
import { type BatcherOptions, type OrderInserter, PurchaseBatcher } from './purchase-batcher.js';
import type { Purchase } from './purchase.schema.js';

/** Holds every insert open until released, and records how many were open at once. */
class HeldInserter implements OrderInserter {
  open = 0;
  mostOpenAtOnce = 0;
  private readonly releases: (() => void)[] = [];

  async insert(purchases: readonly Purchase[]): Promise<InsertedOrders> {
    this.open++;
    this.mostOpenAtOnce = Math.max(this.mostOpenAtOnce, this.open);
    await new Promise<void>((resolve) => this.releases.push(resolve));
    this.open--;
    return allNew(purchases);
  }

  releaseAll(): void {
    for (const release of this.releases.splice(0)) release();
  }
}

/** Every order of the batch is new. */
const allNew = (purchases: readonly Purchase[]): InsertedOrders => ({
  isNew: purchases.map(() => true),
  committedAt: new Date(),
});

const options: BatcherOptions = {
  maxBatchSize: 10,
  maxWaitMs: 1,
  maxBatchesInFlight: 3,
  retryBaseMs: 1,
  retryMaxMs: 1,
  maxAttempts: 1,
};

const purchase = (index: number): Purchase => ({
  saleId: '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11',
  userId: `user-${index}`,
  timestamp: new Date(0),
});

function breaker(): CircuitBreaker {
  return new CircuitBreaker(() => Promise.resolve(), { failureThreshold: 3, baseDelayMs: 1, maxDelayMs: 1 });
}

/** A batcher on `inserter` whose settled batches land in `calls`, one array per call. */
function batcherOn<T>(inserter: OrderInserter, overrides: Partial<BatcherOptions> = {}) {
  const calls: Settled<T>[][] = [];
  const batcher = new PurchaseBatcher<T>(
    inserter,
    breaker(),
    new WorkerMetrics(new Registry()),
    { ...options, ...overrides },
    (batch) => calls.push(batch),
  );
  return { batcher, calls };
}

describe('PurchaseBatcher', () => {
  it('writes up to maxBatchesInFlight batches at once, and no more', async () => {
    const inserter = new HeldInserter();
    const settled: Settled<number>[] = [];
    const batcher = new PurchaseBatcher<number>(
      inserter,
      breaker(),
      new WorkerMetrics(new Registry()),
      options,
      (batch) => settled.push(...batch),
    );

    // 50 purchases: five full batches of 10.
    for (let index = 0; index < 50; index++) batcher.submit(purchase(index), index);
    expect(await holdsWithin(() => inserter.open === 3)).toBe(true);
    // Two more batches are ready: none of them may start while three are open.
    expect(await holdsWithin(() => inserter.open > 3, 50)).toBe(false);
    expect(inserter.mostOpenAtOnce).toBe(3);

    while (inserter.open > 0) {
      inserter.releaseAll();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(await holdsWithin(() => settled.length === 50)).toBe(true);
    expect(settled.filter(({ outcome }) => outcome.kind === 'confirmed')).toHaveLength(50);
    expect(settled.map(({ token }) => token).sort((a, b) => a - b)).toEqual([...Array(50).keys()]);
    expect(inserter.mostOpenAtOnce).toBe(3);
  });

  it('inserts each batch in order-key order, whatever order the purchases came in', async () => {
    const inserted: string[][] = [];
    const recording: OrderInserter = {
      insert: (purchases) => {
        inserted.push(purchases.map(orderKey));
        return Promise.resolve(allNew(purchases));
      },
    };
    const { batcher, calls } = batcherOn<string>(recording, { maxBatchSize: 6 });
    const users = ['u-5', 'u-1', 'u-4', 'u-1', 'u-3', 'u-2'];
    for (const userId of users) batcher.submit({ ...purchase(0), userId }, userId);
    expect(await holdsWithin(() => calls.length === 1)).toBe(true);
    // One call for the whole batch, in submission order; the second u-1 is a duplicate of the first.
    expect(calls[0]?.map(({ token, outcome }) => `${token}:${outcome.kind}`)).toEqual([
      'u-5:confirmed',
      'u-1:confirmed',
      'u-4:confirmed',
      'u-1:duplicate',
      'u-3:confirmed',
      'u-2:confirmed',
    ]);
    expect(inserted).toEqual([
      ['u-1', 'u-2', 'u-3', 'u-4', 'u-5'].map((userId) => orderKey({ ...purchase(0), userId })),
    ]);
  });

  it('at shutdown, gives up a batch waiting to try again, and still writes a batch gathered after', async () => {
    const shutdown = new AbortController();
    let attempts = 0;
    const failingOnce: OrderInserter = {
      insert: (purchases) => {
        attempts++;
        if (attempts === 1)
          return Promise.reject(Object.assign(new Error('connection lost'), { code: 'ECONNRESET' }));
        return Promise.resolve(allNew(purchases));
      },
    };
    const { batcher, calls } = batcherOn<string>(failingOnce, {
      maxBatchSize: 1,
      retryBaseMs: 60_000,
      retryMaxMs: 60_000,
      signal: shutdown.signal,
    });
    batcher.submit(purchase(1), 'waiting');
    expect(await holdsWithin(() => attempts === 1)).toBe(true);

    shutdown.abort();
    expect(await holdsWithin(() => calls.length === 1)).toBe(true);
    const [[waiting]] = calls as [[Settled<string>]];
    expect(waiting.token).toBe('waiting');
    expect(waiting.outcome.kind).toBe('retry');
    expect(waiting.outcome.kind === 'retry' && waiting.outcome.error.name).toBe('ShutdownInterruptedError');

    batcher.submit(purchase(2), 'drained');
    expect(await holdsWithin(() => calls.length === 2)).toBe(true);
    expect(calls[1]?.map(({ token, outcome }) => `${token}:${outcome.kind}`)).toEqual(['drained:confirmed']);
  });

  it('dates a new order by its commit and a duplicate by when the INSERT answered', async () => {
    const commit = new Date('2026-11-27T10:00:00.000Z');
    const oneNew: OrderInserter = {
      insert: (purchases) =>
        Promise.resolve({ isNew: purchases.map((_, index) => index === 0), committedAt: commit }),
    };
    const { batcher, calls } = batcherOn<string>(oneNew, { maxBatchSize: 2 });
    const before = Date.now();
    batcher.submit(purchase(1), 'new');
    batcher.submit(purchase(2), 'existing');
    expect(await holdsWithin(() => calls.length === 1)).toBe(true);
    const [created, existing] = calls[0] as [Settled<string>, Settled<string>];
    expect(created.outcome).toMatchObject({ kind: 'confirmed', committedAt: commit });
    expect(existing.outcome.kind).toBe('duplicate');
    const answeredAt = existing.outcome.kind === 'duplicate' ? existing.outcome.committedAt.getTime() : 0;
    expect(answeredAt).toBeGreaterThanOrEqual(before);
  });
});
