import { Logger } from '@nestjs/common';
import {
  classifyDatabaseError,
  databaseErrorCode,
  databaseErrorMessage,
} from '../database/database-errors.js';
import { backoffDelayMs, sleep } from '../common/backoff.js';
import { ShutdownInterruptedError } from '../common/shutdown-signal.js';
import type { Settings } from '../config/settings.js';
import type { CircuitBreaker } from '../database/circuit-breaker.js';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import { compareOrderKeys, type InsertedOrders } from '../database/order.writer.js';
import { writeIsolatingRefusals } from '../database/refused-rows.js';
import type { Span, SpanContext } from '@opentelemetry/api';
import { contextOf, inChildSpan, startBatchSpan, tracingActive } from '../observability/tracing.js';
import type { Outcome, Settled, SettledListener } from './outcome.js';
import type { Purchase } from '@flashsale/contract';

export interface BatcherOptions {
  /** Most purchases written by one INSERT (BATCH_SIZE). */
  maxBatchSize: number;
  /** Longest a purchase waits for its batch to fill, in ms (BATCH_WAIT_MS). */
  maxWaitMs: number;
  /** Batches written at once (MAX_BATCHES_IN_FLIGHT). */
  maxBatchesInFlight: number;
  /** First back-off after a failed INSERT, in ms (RETRY_BASE_MS); doubles per attempt, with jitter. */
  retryBaseMs: number;
  /** Longest back-off, in ms (RETRY_MAX_MS). */
  retryMaxMs: number;
  /** Attempts at a batch failing with an unclassified error before its messages are handed back (RETRY_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** The worker's shutdown: a batch waiting to try again gives up, its messages left unacked. */
  signal?: AbortSignal;
}

/** The batcher's options from the settings: the one mapping. */
export function batcherOptions(
  settings: Pick<
    Settings,
    | 'BATCH_SIZE'
    | 'BATCH_WAIT_MS'
    | 'MAX_BATCHES_IN_FLIGHT'
    | 'RETRY_BASE_MS'
    | 'RETRY_MAX_MS'
    | 'RETRY_MAX_ATTEMPTS'
  >,
  signal: AbortSignal,
): BatcherOptions {
  return {
    maxBatchSize: settings.BATCH_SIZE,
    maxWaitMs: settings.BATCH_WAIT_MS,
    maxBatchesInFlight: settings.MAX_BATCHES_IN_FLIGHT,
    retryBaseMs: settings.RETRY_BASE_MS,
    retryMaxMs: settings.RETRY_MAX_MS,
    maxAttempts: settings.RETRY_MAX_ATTEMPTS,
    signal,
  };
}

export interface OrderInserter {
  insert(purchases: readonly Purchase[]): Promise<InsertedOrders>;
}

/** A batch write that failed with context: which sales, how many purchases, which attempt. */
export class OrderBatchError extends Error {
  override readonly name = 'OrderBatchError';
  constructor(
    readonly purchases: readonly Purchase[],
    readonly attempt: number,
    readonly code: string | undefined,
    options: ErrorOptions,
  ) {
    const first = purchases[0];
    super(
      `insert of ${purchases.length} order(s) failed on attempt ${attempt}` +
        (first ? ` (first: sale ${first.saleId}, user ${first.userId})` : '') +
        (code ? ` [${code}]` : '') +
        `: ${databaseErrorMessage(options.cause)}`,
      options,
    );
  }
}

/** Shared by every order of one INSERT: it holds no per-order state. */
interface Written {
  inserted: boolean;
  committedAt: Date;
}

interface Pending<T> {
  purchase: Purchase;
  token: T;
  /** The message's span, while tracing is on. */
  trace: SpanContext | undefined;
}

/**
 * Gathers purchases into batches of up to `maxBatchSize` or `maxWaitMs`, writes each batch with one INSERT,
 * and hands the outcomes of a whole batch to `onSettled` at once, once it has committed (one call per batch,
 * not a promise per purchase). `T` is the caller's token for each purchase (the broker's delivery), carried
 * through untouched. A batch the database refuses (a poison row) is bisected until the refused purchase
 * stands alone; transient faults (the database away or read-only) wait behind the circuit breaker and are
 * never handed back; any other failure backs off as a whole batch, `maxAttempts` times, then goes back to the
 * broker. Nothing here acks: the caller settles each message from its outcome.
 */
export class PurchaseBatcher<T> {
  private readonly logger = new Logger(PurchaseBatcher.name);
  private pending: Pending<T>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly ready: Pending<T>[][] = [];
  private readonly writing = new Set<Pending<T>[]>();
  private abandoned = false;

  constructor(
    private readonly orders: OrderInserter,
    private readonly breaker: CircuitBreaker,
    private readonly metrics: WorkerMetrics,
    private readonly options: BatcherOptions,
    private readonly onSettled: SettledListener<T>,
  ) {}

  /** Takes a purchase into the next batch; its outcome comes through `onSettled` with its batch. */
  submit(purchase: Purchase, token: T, trace?: SpanContext): void {
    this.pending.push({ purchase, token, trace });
    if (this.pending.length >= this.options.maxBatchSize) this.cut();
    else this.timer ??= setTimeout(() => this.cut(), this.options.maxWaitMs);
  }

  /** Writes whatever is gathered now, without waiting for the batch to fill (shutdown drain). */
  flushNow(): void {
    this.cut();
  }

  /**
   * Shutdown past its deadline: every purchase still waiting resolves as `retry`; its message stays
   * unacked and the broker redelivers it. Writes already sent may still commit: redelivery then finds
   * a duplicate, which is a success.
   */
  abandon(reason: Error): void {
    this.abandoned = true;
    clearTimeout(this.timer);
    const waiting = [...this.pending, ...this.ready.flat(), ...[...this.writing].flat()];
    this.pending = [];
    this.ready.length = 0;
    this.writing.clear();
    if (waiting.length > 0) this.onSettled(asRetries(waiting, reason));
  }

  private cut(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length > 0) {
      this.ready.push(this.pending);
      this.pending = [];
    }
    this.startWrites();
  }

  private startWrites(): void {
    // `writing` holds one entry per batch: the bound is on batches, not purchases.
    while (this.writing.size < this.options.maxBatchesInFlight && this.ready.length > 0) {
      const batch = this.ready.shift() as Pending<T>[];
      this.writing.add(batch);
      const span = tracingActive()
        ? startBatchSpan(
            batch.length,
            batch.map(({ trace }) => trace),
          )
        : undefined;
      void this.writeBatch(batch, span).then(
        (settled) => {
          if (!this.writing.delete(batch)) return; // abandoned: already handed back as retries
          try {
            this.onSettled(settled, contextOf(span));
          } finally {
            span?.end();
          }
          this.startWrites();
        },
        (error: unknown) => {
          // writeBatch turns every failure into outcomes; this is a bug, and the messages go back.
          span?.end();
          if (!this.writing.delete(batch)) return;
          this.onSettled(asRetries(batch, error instanceof Error ? error : new Error(String(error))));
          this.startWrites();
        },
      );
    }
  }

  private async writeBatch(batch: Pending<T>[], span: Span | undefined): Promise<Settled<T>[]> {
    // One INSERT row per order key, in key order (the order the writer locks them in). The sort is stable, so
    // the first purchase of a key in the batch is the one written; the rest of the batch with that key are
    // duplicates of it whatever the database says.
    const purchaseAt = (index: number) => (batch[index] as Pending<T>).purchase;
    const byKey = batch
      .map((_, index) => index)
      .sort((a, b) => compareOrderKeys(purchaseAt(a), purchaseAt(b)));
    const candidates: Purchase[] = [];
    const candidateOf = new Array<number>(batch.length);
    const writtenFirst = new Array<boolean>(batch.length).fill(false);
    let previous: Purchase | undefined;
    for (const index of byKey) {
      const purchase = purchaseAt(index);
      if (!previous || compareOrderKeys(purchase, previous) !== 0) {
        candidates.push(purchase);
        writtenFirst[index] = true;
        previous = purchase;
      }
      candidateOf[index] = candidates.length - 1;
    }
    const results = await writeIsolatingRefusals(
      candidates,
      (part) => this.writeWithRetries(part, span),
      (error) => classifyDatabaseError(error) === 'poison',
    );
    return batch.map(({ purchase, token }, index): Settled<T> => {
      const result = results[candidateOf[index] as number];
      if (result === undefined)
        return { token, outcome: retry(purchase, new Error('no result for this purchase')) };
      if ('refused' in result) return { token, outcome: refusedOutcome(purchase, result.refused) };
      const { written } = result;
      if (written instanceof Error) return { token, outcome: retry(purchase, written) };
      const kind = written.inserted && writtenFirst[index] ? 'confirmed' : 'duplicate';
      return { token, outcome: { kind, purchase, committedAt: written.committedAt } };
    });
  }

  /** Waits before the next attempt; ends early at shutdown (the loop then gives up). */
  private backOff(attempt: number): Promise<void> {
    return sleep(
      backoffDelayMs(attempt, this.options.retryBaseMs, this.options.retryMaxMs),
      this.options.signal,
    );
  }

  /**
   * One INSERT of `candidates` (distinct keys), tried until it is done with: each written (new or existing),
   * or each the error to hand back to the broker (unclassified failures past `maxAttempts`, or the shutdown).
   * Throws only when the database refuses some row of it (poison): the caller isolates that row.
   */
  private async writeWithRetries(
    candidates: readonly Purchase[],
    span: Span | undefined,
  ): Promise<readonly (Written | Error)[]> {
    const every = (result: Written | Error) => candidates.map(() => result);
    let transientFailures = 0;
    let unclassifiedFailures = 0;
    for (let attempt = 1; ; attempt++) {
      // Shutting down: a first attempt still runs (the drain writes what is gathered), a retry does not wait.
      if (this.abandoned || (attempt > 1 && this.options.signal?.aborted)) {
        return every(new ShutdownInterruptedError('the worker shut down before this purchase was written'));
      }
      await this.breaker.whenClosed();
      const started = performance.now();
      try {
        const { isNew, committedAt } = await inChildSpan(span, 'orders insert', () =>
          this.orders.insert(candidates),
        );
        this.metrics.batchWritten(candidates.length, (performance.now() - started) / 1000);
        this.breaker.recordSuccess();
        // A duplicate is committed as of now; a new order as of its INSERT's commit.
        const existing: Written = { inserted: false, committedAt: new Date() };
        const inserted: Written = { inserted: true, committedAt: committedAt ?? existing.committedAt };
        return isNew.map((created) => (created ? inserted : existing));
      } catch (cause) {
        const kind = classifyDatabaseError(cause);
        const error = new OrderBatchError(candidates, attempt, databaseErrorCode(cause), { cause });
        this.metrics.batchFailed(error.code);
        if (kind === 'poison') {
          this.logger.debug(error.message);
          throw error;
        }
        if (kind === 'transient') {
          // The database is away, busy or read-only: the same batch will succeed later. It waits for the
          // circuit (whose probes are the back-off while it is open), is never handed back, never dead-lettered.
          const wasOpen = this.breaker.isOpen;
          this.breaker.recordFailure(error);
          if (this.breaker.isOpen) {
            transientFailures = 0;
            if (!wasOpen) this.logger.warn(error.message);
            else this.logger.debug(error.message);
          } else {
            this.logger.warn(error.message);
            await this.backOff(++transientFailures);
          }
          continue;
        }
        // Unclassified (a missing table, a refused permission): not a row's fault, so no bisection; the whole
        // batch backs off, and after its last attempt goes back to the broker.
        this.logger.warn(error.message);
        if (++unclassifiedFailures >= this.options.maxAttempts) return every(error);
        await this.backOff(unclassifiedFailures);
      }
    }
  }
}

/** A purchase the database refuses on its own: a rejection, with the database's code and words. */
function refusedOutcome(purchase: Purchase, refusal: unknown): Outcome {
  const code = databaseErrorCode(refusal);
  return {
    kind: 'rejected',
    purchase,
    rejection: {
      code: 'REFUSED_BY_DATABASE',
      reason: `database refused the order (${code ?? 'no code'}): ${databaseErrorMessage(refusal)}`,
    },
  };
}

function retry(purchase: Purchase, error: Error): Outcome {
  return { kind: 'retry', purchase, error };
}

/** Purchases handed back to the broker unwritten: each message stays unacked and comes back. */
function asRetries<T>(items: readonly Pending<T>[], error: Error): Settled<T>[] {
  return items.map(({ purchase, token }) => ({ token, outcome: { kind: 'retry', purchase, error } }));
}
