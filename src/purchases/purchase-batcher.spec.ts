import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { holdsWithin } from '../../test/support/holds-within.js';
import { CircuitBreaker } from '../database/circuit-breaker.js';
import { WorkerMetrics } from '../observability/worker-metrics.js';
import { orderKey } from '../../test/support/order-key.js';
import type { InsertedOrders } from '../database/order.writer.js';
import type { Settled } from './outcome.js';
import { type BatcherOptions, type OrderInserter, PurchaseBatcher } from './purchase-batcher.js';
import type { Purchase } from '@flashsale/contract';

/** Holds every insert open until released, and records how many were open at once. */
class HeldInserter implements OrderInserter {
  open = 0;
  mostOpenAtOnce = 0;
  private holding = true;
  private readonly releases: (() => void)[] = [];

  async insert(purchases: readonly Purchase[]): Promise<InsertedOrders> {
    this.open++;
    this.mostOpenAtOnce = Math.max(this.mostOpenAtOnce, this.open);
    if (this.holding) await new Promise<void>((resolve) => this.releases.push(resolve));
    else await Promise.resolve();
    this.open--;
    return allNew(purchases);
  }

  /** Releases the inserts open now and holds none from now on. */
  stopHolding(): void {
    this.holding = false;
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
  return new CircuitBreaker(() => Promise.resolve(), { failureThreshold: 3, retryBaseMs: 1, retryMaxMs: 1 });
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

    inserter.stopHolding();
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

  describe('when the database cannot take writes (25006, a hot standby behind the address)', () => {
    it('opens the circuit, hands nothing back, and writes the whole batch once a probe succeeds', async () => {
      let writable = false;
      const sizes: number[] = [];
      const readOnly: OrderInserter = {
        insert: (purchases) => {
          sizes.push(purchases.length);
          return writable ? Promise.resolve(allNew(purchases)) : Promise.reject(readOnlyError());
        },
      };
      const circuit = new CircuitBreaker(
        () => (writable ? Promise.resolve() : Promise.reject(readOnlyError())),
        { failureThreshold: 2, retryBaseMs: 1, retryMaxMs: 5 },
      );
      const calls: Settled<number>[][] = [];
      const batcher = new PurchaseBatcher<number>(
        readOnly,
        circuit,
        new WorkerMetrics(new Registry()),
        { ...options, maxAttempts: 1 },
        (batch) => calls.push(batch),
      );
      for (let index = 0; index < 10; index++) batcher.submit(purchase(index), index);

      expect(await holdsWithin(() => circuit.isOpen)).toBe(true);
      // While open, the batch waits for the circuit: no further INSERT, no outcome, nothing bisected.
      const triedWhileOpen = sizes.length;
      expect(await holdsWithin(() => calls.length > 0 || sizes.length > triedWhileOpen, 50)).toBe(false);
      expect(sizes.every((size) => size === 10)).toBe(true);

      writable = true;
      expect(await holdsWithin(() => calls.length === 1)).toBe(true);
      expect(calls[0]?.map(({ outcome }) => outcome.kind)).toEqual(Array(10).fill('confirmed'));
      expect(sizes.every((size) => size === 10)).toBe(true);
    });
  });

  it('backs off an unclassified failure (42P01) as a whole batch, then hands it back: no bisection', async () => {
    const sizes: number[] = [];
    const tableAway: OrderInserter = {
      insert: (purchases) => {
        sizes.push(purchases.length);
        return Promise.reject(
          Object.assign(new Error('relation "orders" does not exist'), { code: '42P01' }),
        );
      },
    };
    const { batcher, calls } = batcherOn<number>(tableAway, { maxAttempts: 3 });
    for (let index = 0; index < 8; index++) batcher.submit(purchase(index), index);
    expect(await holdsWithin(() => calls.length === 1)).toBe(true);
    expect(sizes).toEqual([8, 8, 8]);
    expect(calls[0]?.map(({ outcome }) => outcome.kind)).toEqual(Array(8).fill('retry'));
  });

  it('bisects a batch the database refuses until the refused row stands alone', async () => {
    const sizes: number[] = [];
    const refusesUser3: OrderInserter = {
      insert: (purchases) => {
        sizes.push(purchases.length);
        return purchases.some(({ userId }) => userId === 'user-3')
          ? Promise.reject(Object.assign(new Error('invalid byte sequence'), { code: '22021' }))
          : Promise.resolve(allNew(purchases));
      },
    };
    const { batcher, calls } = batcherOn<number>(refusesUser3, { maxBatchSize: 4 });
    for (let index = 0; index < 4; index++) batcher.submit(purchase(index), index);
    expect(await holdsWithin(() => calls.length === 1)).toBe(true);
    expect(calls[0]?.map(({ token, outcome }) => `${token}:${outcome.kind}`)).toEqual([
      '0:confirmed',
      '1:confirmed',
      '2:confirmed',
      '3:rejected',
    ]);
    expect(sizes).toEqual([4, 2, 2, 1, 1]);
  });
});

/** The failure of a write on a hot standby, as Prisma 7 with @prisma/adapter-pg reports it. */
function readOnlyError(): Error {
  return Object.assign(new Error('Invalid `prisma.$queryRaw()` invocation:\n\nRaw query failed.'), {
    code: 'P2010',
    meta: {
      driverAdapterError: {
        cause: {
          kind: 'postgres',
          code: '25006',
          message: 'cannot execute INSERT in a read-only transaction',
        },
      },
    },
  });
}
