import { Module } from '@nestjs/common';
import { SETTINGS } from '../config/config.module.js';
import type { Settings } from '../config/settings.js';
import { WorkerAuditTrail } from '../audit/audit.module.js';
import { WorkerMetrics } from '../observability/worker-metrics.js';
import { OrderWriter } from './order.writer.js';
import { OutcomeReporter } from './outcome.reporter.js';
import { PurchasePipeline } from './purchase.pipeline.js';

/** The purchase path: validate, batch, persist; and the reporting of each outcome. */
@Module({
  providers: [
    OrderWriter,
    PurchasePipeline,
    {
      provide: OutcomeReporter,
      inject: [WorkerAuditTrail, WorkerMetrics, SETTINGS],
      useFactory: (audit: WorkerAuditTrail, metrics: WorkerMetrics, settings: Settings) =>
        new OutcomeReporter(
          audit,
          metrics,
          settings.WORKER_ID,
          ['debug', 'trace'].includes(settings.LOG_LEVEL),
        ),
    },
  ],
  exports: [PurchasePipeline, OutcomeReporter],
})
export class PurchasesModule {}
