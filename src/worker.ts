import { type BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { AuditTrail } from './audit/audit-trail.js';
import { OutcomeReporter } from './audit/outcome.reporter.js';
import { BrokerConnection, type MissingQueue } from './broker/broker-connection.js';
import { QueueDepthMonitor } from './broker/queue-depth.monitor.js';
import { ShutdownInterruptedError, ShutdownSignal } from './common/shutdown-signal.js';
import { settledBy } from './common/waiting.js';
import { SETTINGS, type Settings } from './config/settings.js';
import type { Delivery } from './consumer/delivery.js';
import { type ConsumerState, PurchaseConsumer } from './consumer/purchase-consumer.js';
import { CircuitBreaker } from './database/circuit-breaker.js';
import { DurabilityMonitor } from './database/durability.monitor.js';
import { OrderWriter } from './database/order.writer.js';
import { PrismaService } from './database/prisma.service.js';
import { WorkerMetrics } from './observability/worker-metrics.js';
import { PurchasePipeline } from './purchases/purchase.pipeline.js';
import { ReplyPublisher } from './settlement/reply.publisher.js';

const CIRCUIT_PAUSE = 'database circuit open';
const SHUTDOWN_PAUSE = 'shutting down';
/** Past the shutdown deadline: how long abandoned batches get to hand their messages back, unacked. */
const ABANDONED_GRACE_MS = 1000;

/** What the worker is made of, built and wired by WorkerModule (Nest injects each by its class). */
@Injectable()
export class WorkerParts implements WorkerDependencies {
  constructor(
    @Inject(SETTINGS) readonly settings: Settings,
    readonly metrics: WorkerMetrics,
    readonly broker: BrokerConnection,
    readonly consumer: PurchaseConsumer,
    readonly pipeline: PurchasePipeline<Delivery>,
    readonly replies: ReplyPublisher,
    readonly reporter: OutcomeReporter,
    readonly audit: AuditTrail,
    readonly breaker: CircuitBreaker,
    readonly prisma: PrismaService,
    readonly orders: OrderWriter,
    readonly depthMonitor: QueueDepthMonitor,
    readonly durability: DurabilityMonitor,
    readonly shutdown: ShutdownSignal,
  ) {}
}

/** What the Worker uses of each part: WorkerParts in production, small fakes in its unit tests. */
export interface WorkerDependencies {
  settings: Pick<Settings, 'SHUTDOWN_DEADLINE_MS' | 'DB_POOL_SIZE' | 'DB_CONNECT_TIMEOUT_MS'>;
  metrics: Pick<WorkerMetrics, 'circuitState'>;
  broker: Pick<BrokerConnection, 'start' | 'close' | 'node' | 'missingQueueSince' | 'publishRefused'>;
  consumer: Pick<
    PurchaseConsumer,
    | 'state'
    | 'pausedFor'
    | 'problem'
    | 'failingForMs'
    | 'inFlight'
    | 'pause'
    | 'resume'
    | 'drained'
    | 'close'
    | 'onConnected'
    | 'onDisconnected'
  >;
  pipeline: Pick<PurchasePipeline<Delivery>, 'flushNow' | 'abandon'>;
  replies: Pick<ReplyPublisher, 'close'>;
  reporter: Pick<OutcomeReporter, 'close'>;
  audit: Pick<AuditTrail, 'close'>;
  breaker: Pick<CircuitBreaker, 'on'>;
  prisma: Pick<PrismaService, 'ping' | '$disconnect'>;
  orders: Pick<OrderWriter, 'insert'>;
  depthMonitor: Pick<QueueDepthMonitor, 'start' | 'stop'>;
  durability: Pick<DurabilityMonitor, 'start' | 'check' | 'stop'>;
  shutdown: Pick<ShutdownSignal, 'abort'>;
}

/**
 * The one owner of the worker's lifecycle: `start`, `pause`, `resume`, `drain`, `close`.
 * - start: warms the database path, connects to the broker and consumes; the database circuit pauses and
 *   resumes the consumer.
 * - close: idempotent (every caller gets the same promise); runs its steps in order, each on its own so one
 *   failure does not skip the rest: stop consuming, end every wait, drain (bounded by the deadline), flush
 *   the audit trail, close the consumer, the broker connection and the database pool. Past the deadline
 *   nothing uncommitted is acked: the broker redelivers it.
 * A delivery's path does not come through here: consumer → pipeline → settler, each built with the next.
 */
export class Worker implements BeforeApplicationShutdown {
  private readonly logger = new Logger(Worker.name);
  private readonly consumer: WorkerDependencies['consumer'];
  private started: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private metDeadline = true;

  constructor(private readonly parts: WorkerDependencies) {
    this.consumer = parts.consumer;
  }

  /** 0 after a shutdown that drained everything in time, 1 otherwise. */
  get exitCode(): number {
    return this.metDeadline ? 0 : 1;
  }

  get state(): ConsumerState {
    return this.consumer.state;
  }

  get pausedFor(): string[] {
    return this.consumer.pausedFor;
  }

  /** Why the worker cannot consume, in the broker's words (e.g. ACCESS_REFUSED), while it cannot. */
  get consumerProblem(): string | undefined {
    return this.consumer.problem;
  }

  /** How long the worker has failed to consume though it wanted to, in ms (0 while consuming or paused). */
  get failingToConsumeForMs(): number {
    return this.consumer.failingForMs;
  }

  /** The dead-letter queue (or, for classic retries, the purchase queue) a publish found missing. */
  get missingQueueSince(): MissingQueue | undefined {
    return this.parts.broker.missingQueueSince;
  }

  /** Why the broker refuses the worker's dead-letter publishes, in its words, until one is confirmed again. */
  get publishRefused(): string | undefined {
    return this.parts.broker.publishRefused;
  }

  /** Messages received and not yet settled. */
  get inFlight(): number {
    return this.consumer.inFlight;
  }

  /** `host:port` of the broker node in use; undefined while disconnected. */
  get brokerNode(): string | undefined {
    return this.parts.broker.node;
  }

  /** Warms the database path, then connects and consumes. Resolves once consuming is under way. */
  start(): Promise<void> {
    this.started ??= (async () => {
      const { breaker, metrics, broker, depthMonitor, durability } = this.parts;
      breaker.on('open', () => {
        metrics.circuitState(true);
        this.pause(CIRCUIT_PAUSE).catch((error: Error) =>
          this.logger.error(`pausing failed: ${error.message}`),
        );
      });
      breaker.on('close', () => {
        metrics.circuitState(false);
        this.resume(CIRCUIT_PAUSE);
        // After a failover the primary is another server, which may have no synchronous standby of its own.
        void durability.check();
      });
      metrics.circuitState(false);
      await this.warmUp();
      void durability.start();
      broker.start(this.consumer);
      depthMonitor.start();
    })();
    return this.started;
  }

  /** Stops consuming for `reason` until `resume(reason)`; resolves once the consumer is cancelled. */
  pause(reason: string): Promise<void> {
    return this.consumer.pause(reason);
  }

  /** Consumes again once no other pause reason is left. */
  resume(reason: string): void {
    this.consumer.resume(reason);
  }

  /**
   * Writes what is gathered at once and waits until every received message is settled, or until `deadline`
   * (epoch ms); past it, every purchase not yet settled is given up on, its message left unacked. Resolves
   * true when everything was settled in time.
   */
  async drain(deadline: number): Promise<boolean> {
    this.parts.pipeline.flushNow();
    if (await settledBy(this.consumer.drained(), deadline)) return true;
    this.logger.error(
      `shutdown deadline reached with ${this.consumer.inFlight} messages unsettled; leaving them unacked`,
    );
    this.parts.pipeline.abandon(
      new ShutdownInterruptedError('shutdown deadline reached before this purchase was written'),
    );
    await settledBy(this.consumer.drained(), Date.now() + ABANDONED_GRACE_MS);
    return false;
  }

  /** Graceful shutdown, once: every caller gets the same promise. */
  close(signal?: string): Promise<void> {
    this.closing ??= this.shutDown(signal);
    return this.closing;
  }

  /** Nest's shutdown (app.close(), SIGTERM) closes the worker while /health and /metrics still answer. */
  beforeApplicationShutdown(signal?: string): Promise<void> {
    return this.close(signal);
  }

  private async shutDown(signal: string | undefined): Promise<void> {
    const { settings, shutdown, audit, reporter, replies, depthMonitor, durability, broker, prisma } =
      this.parts;
    const deadline = Date.now() + settings.SHUTDOWN_DEADLINE_MS;
    this.logger.log(`closing (${signal ?? 'close requested'}): ${this.consumer.inFlight} messages in flight`);
    const steps: [string, () => unknown][] = [
      ['stop consuming', () => this.pause(SHUTDOWN_PAUSE)],
      // One signal ends every wait: back-offs before a requeue or a retry, the database probes.
      ['end every wait', () => shutdown.abort('shutting down')],
      [
        'drain in-flight messages',
        async () => {
          if (!(await this.drain(deadline))) this.metDeadline = false;
        },
      ],
      ['send the replies under way', () => replies.close(deadline)],
      ['log the last outcome summary', () => reporter.close()],
      ['flush the audit trail', () => audit.close(deadline)],
      ['stop the queue depth checks', () => depthMonitor.stop()],
      ['stop the durability checks', () => durability.stop()],
      ['close the consumer channel', () => this.consumer.close()],
      ['close the broker connection', () => broker.close()],
      ['close the database pool', () => prisma.$disconnect()],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (error) {
        this.metDeadline = false;
        this.logger.error(`shutdown step "${what}" failed: ${(error as Error).message}`);
      }
    }
    this.logger.log(
      this.metDeadline
        ? 'closed'
        : 'closed past the shutdown deadline or after a failed step; unsettled messages return to the queue',
    );
  }

  /**
   * Opens the pool's connections and runs the order INSERT once with no rows, so the first purchases of a
   * new worker do not wait for connections, Prisma's first query and cold code. Bounded by the connect
   * timeout; a database that is down is the circuit breaker's business once purchases arrive.
   */
  private async warmUp(): Promise<void> {
    const { prisma, orders, settings } = this.parts;
    const connections = Array.from({ length: settings.DB_POOL_SIZE - 1 }, () => prisma.ping());
    const warm = Promise.all([orders.insert([]), ...connections]);
    try {
      if (!(await settledBy(warm, Date.now() + settings.DB_CONNECT_TIMEOUT_MS))) {
        this.logger.warn(`database not warmed within ${settings.DB_CONNECT_TIMEOUT_MS} ms; consuming anyway`);
      }
    } catch (error) {
      this.logger.warn(`database not reachable at start: ${(error as Error).message}; consuming anyway`);
    }
  }
}
