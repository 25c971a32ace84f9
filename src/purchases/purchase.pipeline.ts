import { Inject, Injectable } from '@nestjs/common';
import { SETTINGS } from '../config/config.module.js';
import type { Settings } from '../config/settings.js';
import { DatabaseCircuitBreaker } from '../database/database.module.js';
import { WorkerMetrics } from '../observability/worker-metrics.js';
import { OrderWriter } from './order.writer.js';
import type { IncomingMessage, MessageProcessor, Outcome } from './outcome.js';
import { PurchaseBatcher } from './purchase-batcher.js';
import { parsePurchase } from './purchase.schema.js';

/** The path of one purchase: validate, then batch and persist; the outcome says what became of it. */
@Injectable()
export class PurchasePipeline implements MessageProcessor {
  readonly batcher: PurchaseBatcher;

  constructor(
    @Inject(SETTINGS) private readonly settings: Settings,
    orders: OrderWriter,
    breaker: DatabaseCircuitBreaker,
    metrics: WorkerMetrics,
  ) {
    this.batcher = new PurchaseBatcher(orders, breaker, metrics, {
      maxBatchSize: settings.BATCH_SIZE,
      maxWaitMs: settings.BATCH_WAIT_MS,
      maxBatchesInFlight: settings.MAX_BATCHES_IN_FLIGHT,
      retryBaseMs: settings.RETRY_BASE_MS,
      retryMaxMs: settings.RETRY_MAX_MS,
      maxAttempts: settings.RETRY_MAX_ATTEMPTS,
    });
  }

  process(message: IncomingMessage): Promise<Outcome> {
    const contentType =
      typeof message.properties.contentType === 'string' ? message.properties.contentType : undefined;
    const parsed = parsePurchase(message.content, contentType, this.settings.MAX_MESSAGE_BYTES);
    if (!parsed.ok) return Promise.resolve({ kind: 'rejected', rejection: parsed.rejection });
    return this.batcher.submit(parsed.purchase);
  }
}
