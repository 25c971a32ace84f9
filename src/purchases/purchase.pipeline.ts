import type { SpanContext } from '@opentelemetry/api';
import type { ShutdownSignal } from '../common/shutdown-signal.js';
import type { Settings } from '../config/settings.js';
import type { CircuitBreaker } from '../database/circuit-breaker.js';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import type { IncomingMessage, MessageProcessor, OutcomeSettler } from './outcome.js';
import { batcherOptions, type OrderInserter, PurchaseBatcher } from './purchase-batcher.js';
import { decodePurchase } from '@flashsale/contract';

/**
 * The path of one purchase: validate, then batch and persist. Outcomes go on to the settler it is built with,
 * a whole batch at a time; an invalid message's outcome goes at once, on its own.
 * `T` is the broker's token for each message (its Delivery), carried through untouched.
 */
export class PurchasePipeline<T> implements MessageProcessor<T> {
  private readonly batcher: PurchaseBatcher<T>;

  constructor(
    private readonly settings: Settings,
    orders: OrderInserter,
    breaker: CircuitBreaker,
    metrics: WorkerMetrics,
    shutdown: ShutdownSignal,
    private readonly settler: OutcomeSettler<T>,
  ) {
    this.batcher = new PurchaseBatcher<T>(
      orders,
      breaker,
      metrics,
      batcherOptions(settings, shutdown.signal),
      (settled, trace) => settler.settleBatch(settled, trace),
    );
  }

  process(message: IncomingMessage, token: T, trace?: SpanContext): void {
    try {
      const contentType =
        typeof message.properties.contentType === 'string' ? message.properties.contentType : undefined;
      const { MAX_MESSAGE_BYTES: maxBytes, PURCHASE_PATTERN: pattern } = this.settings;
      const parsed = decodePurchase(message.content, { contentType, maxBytes, pattern });
      if (parsed.ok) this.batcher.submit(parsed.purchase, token, trace);
      else this.settler.settleBatch([{ token, outcome: { kind: 'rejected', rejection: parsed.rejection } }]);
    } catch (error) {
      // Every known failure is an outcome already; anything else goes back to the broker, never dropped.
      this.settler.settleBatch([{ token, outcome: { kind: 'retry', error: error as Error } }]);
    }
  }

  /** Writes whatever is gathered now, without waiting for the batch to fill (the drain at shutdown). */
  flushNow(): void {
    this.batcher.flushNow();
  }

  /**
   * Shutdown past its deadline: every purchase not yet settled comes back as `retry` with `reason`, its
   * message left unacked for redelivery.
   */
  abandon(reason: Error): void {
    this.batcher.abandon(reason);
  }
}
