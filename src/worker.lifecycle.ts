import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { register } from 'prom-client';
import { WorkerAuditTrail } from './audit/audit.module.js';
import { ShutdownInterruptedError, ShutdownSignal } from './common/shutdown-signal.js';
import { PurchaseTransport } from './broker/purchase.transport.js';
import { QueueDepthMonitor } from './broker/queue-depth.monitor.js';
import { SETTINGS } from './config/config.module.js';
import type { Settings } from './config/settings.js';
import { DatabaseCircuitBreaker } from './database/database.module.js';
import { PrismaService } from './database/prisma.service.js';
import { WorkerMetrics } from './observability/worker-metrics.js';
import { PurchasePipeline } from './purchases/purchase.pipeline.js';

const CIRCUIT_PAUSE = 'database circuit open';
const SHUTDOWN_PAUSE = 'shutting down';

/**
 * The worker's lifecycle in one place. Start: the database circuit pauses and resumes the consumer.
 * Shutdown, in this order, each step on its own so one failure does not skip the rest: stop consuming,
 * drain in-flight messages (bounded by the deadline), flush the audit trail, close the broker, close the
 * database pool. Past the deadline nothing uncommitted is acked: the broker redelivers it.
 */
@Injectable()
export class WorkerLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(WorkerLifecycle.name);
  private stopping: Promise<void> | undefined;
  private metDeadline = true;

  constructor(
    @Inject(SETTINGS) private readonly settings: Settings,
    private readonly transport: PurchaseTransport,
    private readonly pipeline: PurchasePipeline<unknown>,
    private readonly audit: WorkerAuditTrail,
    private readonly breaker: DatabaseCircuitBreaker,
    private readonly prisma: PrismaService,
    private readonly depthMonitor: QueueDepthMonitor,
    private readonly metrics: WorkerMetrics,
    private readonly shutdownSignal: ShutdownSignal,
  ) {}

  /** 0 after a shutdown that drained everything in time, 1 otherwise. */
  get exitCode(): number {
    return this.metDeadline ? 0 : 1;
  }

  onApplicationBootstrap(): void {
    this.breaker.on('open', () => {
      this.metrics.circuitState(true);
      this.transport
        .pause(CIRCUIT_PAUSE)
        .catch((error: Error) => this.logger.error(`pausing failed: ${error.message}`));
    });
    this.breaker.on('close', () => {
      this.metrics.circuitState(false);
      this.transport.resume(CIRCUIT_PAUSE);
    });
    this.metrics.circuitState(false);
    this.depthMonitor.start();
  }

  beforeApplicationShutdown(signal?: string): Promise<void> {
    this.stopping ??= this.shutdown(signal);
    return this.stopping;
  }

  private async shutdown(signal: string | undefined): Promise<void> {
    const deadline = Date.now() + this.settings.SHUTDOWN_DEADLINE_MS;
    this.logger.log(
      `closing (${signal ?? 'close requested'}): ${this.transport.inFlight} messages in flight`,
    );
    await this.step('stop consuming', () => this.transport.pause(SHUTDOWN_PAUSE));
    // One signal ends every wait: back-offs before a requeue or a retry, database probes.
    this.shutdownSignal.abort('shutting down');
    await this.step('drain in-flight messages', () => this.drain(deadline));
    await this.step('flush audit trail', () => this.audit.close(deadline));
    this.depthMonitor.stop();
    await this.step('close broker connection', () => this.transport.close());
    await this.step('close database pool', () => this.prisma.$disconnect());
    this.metrics.unregister();
    register.clear();
    this.logger.log(
      this.metDeadline
        ? 'closed'
        : 'closed past the shutdown deadline; unsettled messages return to the queue',
    );
  }

  private async drain(deadline: number): Promise<void> {
    this.pipeline.batcher.flushNow();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.transport.drained().then(() => false),
      new Promise<boolean>(
        (resolve) => (timer = setTimeout(() => resolve(true), Math.max(0, deadline - Date.now()))),
      ),
    ]);
    clearTimeout(timer);
    if (!timedOut) return;
    this.metDeadline = false;
    this.logger.error(
      `shutdown deadline reached with ${this.transport.inFlight} messages unsettled; leaving them unacked`,
    );
    this.pipeline.batcher.abandon(
      new ShutdownInterruptedError('shutdown deadline reached before this purchase was written'),
    );
    await Promise.race([
      this.transport.drained(),
      new Promise((resolve) => setTimeout(resolve, 1000).unref()),
    ]);
  }

  private async step(what: string, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (error) {
      this.metDeadline = false;
      this.logger.error(`shutdown step "${what}" failed: ${(error as Error).message}`);
    }
  }
}
