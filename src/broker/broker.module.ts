import { Module } from '@nestjs/common';
import { ShutdownSignal } from '../common/shutdown-signal.js';
import { SETTINGS } from '../config/config.module.js';
import type { Settings } from '../config/settings.js';
import { WorkerMetrics } from '../observability/worker-metrics.js';
import { OutcomeReporter } from '../purchases/outcome.reporter.js';
import { PurchasePipeline } from '../purchases/purchase.pipeline.js';
import { PurchasesModule } from '../purchases/purchases.module.js';
import type { Delivery } from './delivery.js';
import { PurchaseTransport } from './purchase.transport.js';
import { QueueDepthMonitor } from './queue-depth.monitor.js';

/** The RabbitMQ side: transport (connection, topology, consume, settle) and the queue depth monitor. */
@Module({
  imports: [PurchasesModule],
  providers: [
    {
      provide: PurchaseTransport,
      inject: [SETTINGS, WorkerMetrics, OutcomeReporter, PurchasePipeline, ShutdownSignal],
      useFactory: (
        settings: Settings,
        metrics: WorkerMetrics,
        reporter: OutcomeReporter,
        pipeline: PurchasePipeline<Delivery>,
        shutdown: ShutdownSignal,
      ) => new PurchaseTransport(settings, metrics, reporter, pipeline, shutdown.signal),
    },
    {
      provide: QueueDepthMonitor,
      inject: [PurchaseTransport, WorkerMetrics, SETTINGS],
      useFactory: (transport: PurchaseTransport, metrics: WorkerMetrics, settings: Settings) =>
        new QueueDepthMonitor(transport, metrics, settings),
    },
  ],
  exports: [PurchaseTransport, QueueDepthMonitor],
})
export class BrokerModule {}
