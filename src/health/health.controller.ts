import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { PurchaseTransport } from '../broker/purchase.transport.js';
import { DatabaseCircuitBreaker } from '../database/database.module.js';
import { PrismaService } from '../database/prisma.service.js';

const DATABASE_PING_TIMEOUT_MS = 1000;

/** Liveness (`/health`) and readiness (`/ready`: consuming from RabbitMQ and the database reachable). */
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly transport: PurchaseTransport,
    private readonly breaker: DatabaseCircuitBreaker,
    private readonly prisma: PrismaService,
  ) {}

  /** The process is alive and its event loop turns. */
  @Get('health')
  @HealthCheck()
  liveness() {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  readiness() {
    return this.health.check([() => this.consumer(), () => this.database()]);
  }

  private consumer() {
    const session = this.indicators.check('rabbitmq');
    const state = this.transport.state;
    const details = { state, inFlight: this.transport.inFlight, pausedFor: this.transport.pausedFor };
    return state === 'consuming'
      ? session.up(details)
      : session.down({ ...details, reason: `consumer is ${state}` });
  }

  private async database() {
    const session = this.indicators.check('database');
    const openReason = this.breaker.openReason;
    if (openReason) return session.down({ reason: openReason });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.prisma.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${DATABASE_PING_TIMEOUT_MS} ms`)),
            DATABASE_PING_TIMEOUT_MS,
          );
        }),
      ]);
      return session.up();
    } catch (error) {
      return session.down({ reason: `database unreachable: ${(error as Error).message}` });
    } finally {
      clearTimeout(timer);
    }
  }
}
