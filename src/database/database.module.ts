import { Global, Inject, Injectable, Module } from '@nestjs/common';
import { ShutdownSignal } from '../common/shutdown-signal.js';
import { SETTINGS } from '../config/config.module.js';
import type { Settings } from '../config/settings.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { PrismaService } from './prisma.service.js';

/** The circuit breaker of this worker's database, probing with `SELECT 1`. */
@Injectable()
export class DatabaseCircuitBreaker extends CircuitBreaker {
  constructor(prisma: PrismaService, @Inject(SETTINGS) settings: Settings, shutdown: ShutdownSignal) {
    super(() => prisma.ping(), {
      failureThreshold: settings.CIRCUIT_FAILURE_THRESHOLD,
      baseDelayMs: settings.RETRY_BASE_MS,
      maxDelayMs: settings.RETRY_MAX_MS,
      signal: shutdown.signal,
    });
  }
}

@Global()
@Module({
  providers: [PrismaService, DatabaseCircuitBreaker],
  exports: [PrismaService, DatabaseCircuitBreaker],
})
export class DatabaseModule {}
