import { Inject, Injectable } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { SETTINGS } from '../config/config.module.js';
import type { Settings } from '../config/settings.js';
import { PrismaClient } from '../generated/prisma/client.js';

/**
 * The one Prisma client of a worker, on a `pg` pool whose size and connect timeout are set explicitly
 * (pg's defaults are 10 connections and waiting forever: PITFALLS 10). Closed by WorkerLifecycle only.
 */
@Injectable()
export class PrismaService extends PrismaClient {
  constructor(@Inject(SETTINGS) settings: Settings) {
    super({
      adapter: new PrismaPg({
        connectionString: settings.DATABASE_URL,
        max: settings.DB_POOL_SIZE,
        connectionTimeoutMillis: settings.DB_CONNECT_TIMEOUT_MS,
        idleTimeoutMillis: 30_000,
        application_name: `flashsale-worker:${settings.WORKER_ID}`.slice(0, 63),
      }),
    });
  }

  /** Resolves when the database answers a trivial query; used by the circuit breaker and /ready. */
  async ping(): Promise<void> {
    await this.$queryRaw`SELECT 1`;
  }
}
