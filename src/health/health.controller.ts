import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { SETTINGS, type Settings } from '../config/settings.js';
import { CircuitBreaker } from '../database/circuit-breaker.js';
import { describeDatabaseFault } from '../database/database-errors.js';
import { OrderWriter } from '../database/order.writer.js';
import { redactCredentials } from '../common/log-redaction.js';
import { withTimeout } from '../common/waiting.js';
import { Worker } from '../worker.js';

const DATABASE_PROBE_TIMEOUT_MS = 1000;

/**
 * Liveness (`/health`: the event loop turns, and the worker has not failed to consume for longer than
 * NOT_CONSUMING_UNHEALTHY_MS) and readiness (`/ready`: consuming from RabbitMQ, its dead-letter queue takes
 * publishes, and the database takes a write: a hot standby answers `SELECT 1` too), each with the reason when
 * down.
 */
@Controller()
export class HealthController {
  private probing: Promise<void> | undefined;

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly worker: Worker,
    private readonly breaker: CircuitBreaker,
    private readonly orders: OrderWriter,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  /** The process is alive, its event loop turns, and it is not stuck unable to consume. */
  @Get('health')
  @HealthCheck()
  liveness() {
    return this.health.check([() => this.consuming()]);
  }

  private consuming() {
    const session = this.indicators.check('consumer');
    const failingForMs = this.worker.failingToConsumeForMs;
    if (failingForMs <= this.settings.NOT_CONSUMING_UNHEALTHY_MS) return session.up();
    return session.down({
      reason: `not consuming for ${Math.round(failingForMs / 1000)} s: ${this.worker.consumerProblem ?? this.worker.state}`,
    });
  }

  @Get('ready')
  @HealthCheck()
  readiness() {
    return this.health.check([() => this.consumer(), () => this.database()]);
  }

  private consumer() {
    const session = this.indicators.check('rabbitmq');
    const state = this.worker.state;
    const problem = this.worker.consumerProblem;
    const missing = this.worker.missingQueueSince;
    const details = {
      state,
      node: this.worker.brokerNode ?? null,
      inFlight: this.worker.inFlight,
      pausedFor: this.worker.pausedFor,
    };
    if (state !== 'consuming') {
      return session.down({ ...details, reason: `consumer is ${state}${problem ? `: ${problem}` : ''}` });
    }
    const refused = this.worker.publishRefused;
    if (refused) {
      return session.down({ ...details, reason: `dead letters cannot be published: ${refused}` });
    }
    if (missing) {
      return session.down({
        ...details,
        reason: `queue ${missing.queue} is missing since ${missing.since.toISOString()}: publishes to it are returned unroutable`,
      });
    }
    return session.up(details);
  }

  private async database() {
    const session = this.indicators.check('database');
    const openReason = this.breaker.openReason;
    if (openReason) return session.down({ reason: openReason });
    try {
      // Probes arriving while one is pending share it: a hung database must not pile up queries.
      this.probing ??= this.orders.checkWritable().finally(() => (this.probing = undefined));
      await withTimeout(
        this.probing,
        DATABASE_PROBE_TIMEOUT_MS,
        `the database does not answer: no answer within ${DATABASE_PROBE_TIMEOUT_MS} ms`,
      );
      return session.up();
    } catch (error) {
      return session.down({ reason: redactCredentials(describeDatabaseFault(error)) });
    }
  }
}
