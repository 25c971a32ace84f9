import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { AuditTrail } from './audit/audit-trail.js';
import { OutcomeReporter } from './audit/outcome.reporter.js';
import type { ConnectionListener } from './broker/broker-connection.js';
import { PurchaseConsumer } from './consumer/purchase-consumer.js';
import { ShutdownSignal } from './common/shutdown-signal.js';
import { parseSettings } from './config/settings.js';
import { CircuitBreaker } from './database/circuit-breaker.js';
import { WorkerMetrics } from './observability/worker-metrics.js';
import { PurchasePipeline } from './purchases/purchase.pipeline.js';
import type { Delivery } from './consumer/delivery.js';
import { Worker } from './worker.js';

/**
 * A Worker on fakes that write down what is done to them, in order: the broker never connects, the database
 * answers (or hangs, or fails) as told.
 */
function workerOnFakes(options: { hangingDatabase?: boolean; failing?: string[] } = {}) {
  const calls: string[] = [];
  const step = (name: string) => () => {
    calls.push(name);
    if (options.failing?.includes(name)) return Promise.reject(new Error(`${name} broke`));
    return Promise.resolve();
  };
  const database = (name: string) => () => {
    calls.push(name);
    return options.hangingDatabase ? new Promise<never>(() => undefined) : Promise.resolve();
  };
  const settings = parseSettings({ DB_POOL_SIZE: '3', DB_CONNECT_TIMEOUT_MS: '100', LOG_LEVEL: 'fatal' });
  const metrics = new WorkerMetrics(new Registry());
  const shutdown = new ShutdownSignal();
  const breaker = new CircuitBreaker(() => Promise.resolve(), {
    failureThreshold: 3,
    retryBaseMs: 1,
    retryMaxMs: 1,
    signal: shutdown.signal,
  });
  const orders = {
    insert: (rows: readonly unknown[]) => {
      calls.push(`insert ${rows.length} orders`);
      return options.hangingDatabase
        ? new Promise<never>(() => undefined)
        : Promise.resolve({ isNew: [], committedAt: undefined });
    },
  };
  const audit = { record: () => undefined, close: step('audit.close') };
  const broker = {
    publisher: {},
    node: undefined,
    missingQueueSince: undefined,
    publishRefused: undefined,
    onReturned: () => undefined,
    start: (listener: ConnectionListener) => {
      calls.push('broker.start');
      expect(listener).toBeDefined();
    },
    openChannel: () => Promise.reject(new Error('not connected to the broker')),
    declareTopology: () => Promise.resolve(),
    close: step('broker.close'),
  };
  const consumer = new PurchaseConsumer(
    broker,
    { process: () => undefined },
    { onPausedChange: () => undefined, onAckFrame: () => undefined },
    { queue: 'purchase', prefetch: 10, retryBaseMs: 1, retryMaxMs: 1 },
  );
  const worker = new Worker({
    settings,
    metrics,
    broker,
    consumer,
    pipeline: new PurchasePipeline<Delivery>(settings, orders, breaker, metrics, shutdown, {
      settleBatch: () => undefined,
    }),
    replies: { close: () => Promise.resolve() },
    reporter: new OutcomeReporter(audit as unknown as AuditTrail, metrics, {
      workerId: 'test',
      debugEnabled: false,
      messageWarningsPerInterval: 0,
    }),
    audit: audit,
    breaker,
    prisma: { ping: database('ping'), $disconnect: step('prisma.$disconnect') },
    orders: orders,
    depthMonitor: {
      start: () => calls.push('depthMonitor.start'),
      stop: () => calls.push('depthMonitor.stop'),
    },
    durability: {
      start: () => (calls.push('durability.start'), Promise.resolve()),
      check: () => Promise.resolve(),
      stop: () => calls.push('durability.stop'),
    },
    shutdown,
  });
  return { worker, calls, shutdown };
}

describe('Worker', () => {
  describe('start', () => {
    it('opens the pool and runs the order INSERT once before it connects to the broker', async () => {
      const { worker, calls } = workerOnFakes();
      await worker.start();
      // All at once: the INSERT takes one connection, the pings the others of the pool of 3.
      expect(calls.slice(0, 3).sort()).toEqual(['insert 0 orders', 'ping', 'ping']);
      expect(calls.slice(3)).toEqual(['durability.start', 'broker.start', 'depthMonitor.start']);
    });

    it('consumes anyway when the database does not answer within the connect timeout', async () => {
      const { worker, calls } = workerOnFakes({ hangingDatabase: true });
      await worker.start();
      expect(calls.slice(-2)).toEqual(['broker.start', 'depthMonitor.start']);
    });

    it('starts once however often it is asked', async () => {
      const { worker, calls } = workerOnFakes();
      await Promise.all([worker.start(), worker.start()]);
      await worker.start();
      expect(calls.filter((call) => call === 'broker.start')).toHaveLength(1);
    });
  });

  describe('close', () => {
    it('runs its steps in order: end every wait, flush the audit trail, then the broker, then the database', async () => {
      const { worker, calls, shutdown } = workerOnFakes();
      await worker.start();
      calls.length = 0;
      await worker.close('SIGTERM');
      expect(shutdown.signal.aborted).toBe(true);
      expect(calls).toEqual([
        'audit.close',
        'depthMonitor.stop',
        'durability.stop',
        'broker.close',
        'prisma.$disconnect',
      ]);
      expect(worker.exitCode).toBe(0);
    });

    it('keeps its promise: a second close gets the same one and runs nothing again', async () => {
      const { worker, calls } = workerOnFakes();
      const first = worker.close('SIGTERM');
      const second = worker.close('SIGINT');
      expect(second).toBe(first);
      await first;
      await worker.beforeApplicationShutdown();
      expect(calls.filter((call) => call === 'broker.close')).toHaveLength(1);
    });

    it('runs every later step when one fails, and exits 1', async () => {
      const { worker, calls } = workerOnFakes({ failing: ['audit.close', 'broker.close'] });
      await worker.close('SIGTERM');
      expect(calls).toEqual([
        'audit.close',
        'depthMonitor.stop',
        'durability.stop',
        'broker.close',
        'prisma.$disconnect',
      ]);
      expect(worker.exitCode).toBe(1);
    });
  });
});
