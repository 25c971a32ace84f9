import { describe, expect, it } from '@jest/globals';
import type { ConnectionListener } from './broker/broker-connection.js';
import { parseSettings } from './config/settings.js';
import type { ConsumerState } from './consumer/purchase-consumer.js';
import { CircuitBreaker } from './database/circuit-breaker.js';
import type { InsertedOrders, OrderRow } from './database/order.writer.js';
import { Worker, type WorkerDependencies } from './worker.js';

/** What was done to the fakes, in order, each as `part.method` (with its argument where it tells). */
type Calls = string[];
type Parts = WorkerDependencies;
type ConsumerPart = Parts['consumer'];
type BrokerPart = Parts['broker'];
type DatabasePart = Parts['prisma'] & Parts['orders'];
type ShutdownPart = Parts['shutdown'];

interface FakeOptions {
  /** Database calls never answer. */
  hangingDatabase?: boolean;
  /** Steps that reject, by name. */
  failing?: string[];
  /** Messages the consumer holds until they are drained. */
  inFlight?: number;
}

/** A step that is written down, and rejects when it is told to fail. */
function step(calls: Calls, options: FakeOptions, name: string): Promise<void> {
  calls.push(name);
  return options.failing?.includes(name) ? Promise.reject(new Error(`${name} broke`)) : Promise.resolve();
}

class FakeConsumer implements ConsumerPart {
  state: ConsumerState = 'connecting';
  readonly pausedFor: string[] = [];
  readonly problem = undefined;
  readonly failingForMs = 0;
  inFlight: number;

  constructor(
    private readonly calls: Calls,
    private readonly options: FakeOptions,
  ) {
    this.inFlight = options.inFlight ?? 0;
  }

  pause(reason: string): Promise<void> {
    this.pausedFor.push(reason);
    return step(this.calls, this.options, `consumer.pause ${reason}`);
  }
  resume(reason: string): void {
    this.pausedFor.splice(this.pausedFor.indexOf(reason), 1);
    this.calls.push(`consumer.resume ${reason}`);
  }
  drained(): Promise<void> {
    this.calls.push('consumer.drained');
    this.inFlight = 0;
    return Promise.resolve();
  }
  close(): Promise<void> {
    return step(this.calls, this.options, 'consumer.close');
  }
  onConnected(): void {
    this.state = 'consuming';
  }
  onDisconnected(): void {
    this.state = 'disconnected';
  }
}

class FakeBroker implements BrokerPart {
  readonly node = undefined;
  readonly missingQueueSince = undefined;
  readonly publishRefused = undefined;
  /** Whom the broker tells of its connection. */
  listener: ConnectionListener | undefined;

  constructor(
    private readonly calls: Calls,
    private readonly options: FakeOptions,
  ) {}

  start(listener: ConnectionListener): void {
    this.calls.push('broker.start');
    this.listener = listener;
  }
  close(): Promise<void> {
    return step(this.calls, this.options, 'broker.close');
  }
}

class FakeDatabase implements DatabasePart {
  constructor(
    private readonly calls: Calls,
    private readonly options: FakeOptions,
  ) {}

  ping(): Promise<void> {
    this.calls.push('prisma.ping');
    return this.answer(undefined);
  }
  insert(orders: readonly OrderRow[]): Promise<InsertedOrders> {
    this.calls.push(`orders.insert ${orders.length}`);
    return this.answer({ isNew: [], committedAt: undefined });
  }
  $disconnect(): Promise<void> {
    return step(this.calls, this.options, 'prisma.$disconnect');
  }
  private answer<T>(value: T): Promise<T> {
    return this.options.hangingDatabase ? new Promise<never>(() => undefined) : Promise.resolve(value);
  }
}

/** The one shutdown signal: written down when it aborts; the breaker stops probing on it. */
class FakeShutdown implements ShutdownPart {
  private readonly controller = new AbortController();
  readonly signal = this.controller.signal;

  constructor(private readonly calls: Calls) {}

  abort(reason: string): void {
    this.calls.push(`shutdown.abort ${reason}`);
    this.controller.abort(new Error(reason));
  }
}

/** A Worker on fakes that write down what is done to them: the broker never connects by itself. */
function workerOnFakes(options: FakeOptions = {}) {
  const calls: Calls = [];
  const circuit: boolean[] = [];
  const shutdown = new FakeShutdown(calls);
  const consumer = new FakeConsumer(calls, options);
  const broker = new FakeBroker(calls, options);
  const database = new FakeDatabase(calls, options);
  let probeAnswers = false;
  const breaker = new CircuitBreaker(
    () => (probeAnswers ? Promise.resolve() : Promise.reject(new Error('database away'))),
    { failureThreshold: 1, retryBaseMs: 1, retryMaxMs: 1, signal: shutdown.signal },
  );
  const parts: Parts = {
    settings: parseSettings({ DB_POOL_SIZE: '3', DB_CONNECT_TIMEOUT_MS: '100' }),
    metrics: {
      circuitState: (open) => circuit.push(open),
    },
    broker,
    consumer,
    pipeline: {
      flushNow: () => calls.push('pipeline.flushNow'),
      abandon: () => calls.push('pipeline.abandon'),
    },
    replies: { close: () => step(calls, options, 'replies.close') },
    reporter: { close: () => calls.push('reporter.close') },
    audit: { close: () => step(calls, options, 'audit.close') },
    breaker,
    prisma: database,
    orders: database,
    depthMonitor: {
      start: () => calls.push('depthMonitor.start'),
      stop: () => calls.push('depthMonitor.stop'),
    },
    durability: {
      start: () => step(calls, options, 'durability.start'),
      check: () => step(calls, options, 'durability.check'),
      stop: () => calls.push('durability.stop'),
    },
    shutdown,
  };
  const answerProbes = () => (probeAnswers = true);
  return { worker: new Worker(parts), calls, circuit, consumer, broker, breaker, shutdown, answerProbes };
}

/** Every step of a shutdown, in order, when nothing fails and nothing is left in flight. */
const SHUTDOWN_STEPS = [
  'consumer.pause shutting down',
  'shutdown.abort shutting down',
  'pipeline.flushNow',
  'consumer.drained',
  'replies.close',
  'reporter.close',
  'audit.close',
  'depthMonitor.stop',
  'durability.stop',
  'consumer.close',
  'broker.close',
  'prisma.$disconnect',
];

describe('Worker', () => {
  describe('start', () => {
    it('opens the pool and runs the order INSERT once, then connects the consumer to the broker', async () => {
      const { worker, calls, broker, consumer } = workerOnFakes();
      await worker.start();
      // All at once: the INSERT takes one connection, the pings the others of the pool of 3.
      expect(calls.slice(0, 3).sort()).toEqual(['orders.insert 0', 'prisma.ping', 'prisma.ping']);
      expect(calls.slice(3)).toEqual(['durability.start', 'broker.start', 'depthMonitor.start']);
      expect(broker.listener).toBe(consumer);
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

  describe('when the database circuit opens', () => {
    it('pauses the consumer until the circuit closes, then resumes it and reads the durability again', async () => {
      const { worker, calls, circuit, consumer, breaker, answerProbes } = workerOnFakes();
      await worker.start();
      calls.length = 0;

      breaker.recordFailure(new Error('connection refused'));
      expect(worker.pausedFor).toEqual(['database circuit open']);
      expect(circuit).toEqual([false, true]);

      answerProbes();
      await breaker.whenClosed();
      expect(consumer.pausedFor).toEqual([]);
      expect(circuit).toEqual([false, true, false]);
      expect(calls).toEqual([
        'consumer.pause database circuit open',
        'consumer.resume database circuit open',
        'durability.check',
      ]);
    });
  });

  describe('close', () => {
    it('runs every shutdown step in order, from stop consuming to closing the database pool', async () => {
      const { worker, calls, shutdown } = workerOnFakes({ inFlight: 2 });
      await worker.start();
      calls.length = 0;
      await worker.close('SIGTERM');
      expect(calls).toEqual(SHUTDOWN_STEPS);
      expect(shutdown.signal.aborted).toBe(true);
      expect(worker.inFlight).toBe(0);
      expect(worker.exitCode).toBe(0);
    });

    it('keeps its promise: a second close gets the same one and runs nothing again', async () => {
      const { worker, calls } = workerOnFakes();
      const first = worker.close('SIGTERM');
      const second = worker.close('SIGINT');
      expect(second).toBe(first);
      await first;
      await worker.beforeApplicationShutdown();
      expect(calls).toEqual(SHUTDOWN_STEPS);
    });

    it('runs every later step when one fails, and exits 1', async () => {
      const { worker, calls } = workerOnFakes({ failing: ['audit.close', 'broker.close'] });
      await worker.close('SIGTERM');
      expect(calls).toEqual(SHUTDOWN_STEPS);
      expect(worker.exitCode).toBe(1);
    });
  });
});
