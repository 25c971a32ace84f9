import type { Context, SpanContext } from '@opentelemetry/api';
import type { ShutdownSignal } from '../common/shutdown-signal.js';
import type { Settings } from '../config/settings.js';
import type { CircuitBreaker } from '../database/circuit-breaker.js';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import type { IncomingMessage, MessageProcessor, Settled, SettledListener } from './outcome.js';
import { type OrderInserter, PurchaseBatcher } from './purchase-batcher.js';
import { decodePurchase } from '@flashsale/contract';

/**
 * The path of one purchase: validate, then batch and persist. Outcomes go to the listener given to `connect`
 * (the broker), a whole batch at a time; an invalid message's outcome goes at once, on its own.
 * `T` is the broker's token for each message, carried through untouched.
 */
export class PurchasePipeline<T> implements MessageProcessor<T> {
  private readonly batcher: PurchaseBatcher<T>;
  private onSettled: SettledListener<T> | undefined;

  constructor(
    private readonly settings: Settings,
    orders: OrderInserter,
    breaker: CircuitBreaker,
    metrics: WorkerMetrics,
    shutdown: ShutdownSignal,
  ) {
    this.batcher = new PurchaseBatcher<T>(
      orders,
      breaker,
      metrics,
      {
        maxBatchSize: settings.BATCH_SIZE,
        maxWaitMs: settings.BATCH_WAIT_MS,
        maxBatchesInFlight: settings.MAX_BATCHES_IN_FLIGHT,
        retryBaseMs: settings.RETRY_BASE_MS,
        retryMaxMs: settings.RETRY_MAX_MS,
        maxAttempts: settings.RETRY_MAX_ATTEMPTS,
        signal: shutdown.signal,
      },
      (settled, trace) => this.settle(settled, trace),
    );
  }

  connect(onSettled: SettledListener<T>): void {
    this.onSettled = onSettled;
  }

  process(message: IncomingMessage, token: T, trace?: SpanContext): void {
    const contentType =
      typeof message.properties.contentType === 'string' ? message.properties.contentType : undefined;
    const { MAX_MESSAGE_BYTES: maxBytes, PURCHASE_PATTERN: pattern } = this.settings;
    const parsed = decodePurchase(message.content, { contentType, maxBytes, pattern });
    if (parsed.ok) this.batcher.submit(parsed.purchase, token, trace);
    else this.settle([{ token, outcome: { kind: 'rejected', rejection: parsed.rejection } }]);
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

  private settle(settled: Settled<T>[], trace?: Context): void {
    if (!this.onSettled) throw new Error('PurchasePipeline: no listener connected for its outcomes');
    this.onSettled(settled, trace);
  }
}
