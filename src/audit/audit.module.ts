import { Global, Inject, Injectable, Module } from '@nestjs/common';
import { SETTINGS } from '../config/config.module.js';
import type { Settings } from '../config/settings.js';
import { WorkerMetrics } from '../observability/worker-metrics.js';
import { AuditTrail } from './audit-trail.js';
import { AuditWriter } from './audit.writer.js';

/** The worker's audit trail, writing through AuditWriter with the configured batch size and interval. */
@Injectable()
export class WorkerAuditTrail extends AuditTrail {
  constructor(writer: AuditWriter, @Inject(SETTINGS) settings: Settings, metrics: WorkerMetrics) {
    super(
      writer,
      {
        batchSize: settings.AUDIT_BATCH_SIZE,
        flushIntervalMs: settings.AUDIT_FLUSH_INTERVAL_MS,
        maxBufferedEvents: settings.AUDIT_BUFFER_MAX,
        maxRetryDelayMs: settings.RETRY_MAX_MS,
      },
      metrics,
    );
  }
}

@Global()
@Module({ providers: [AuditWriter, WorkerAuditTrail], exports: [WorkerAuditTrail] })
export class AuditModule {}
