import { Logger } from '@nestjs/common';
import {
  classifyDatabaseError,
  databaseErrorCode,
  databaseErrorMessage,
} from '../database/database-errors.js';
import { backoffDelayMs, sleep } from '../common/backoff.js';
import { ShutdownInterruptedError } from '../common/shutdown-signal.js';
import type { CircuitBreaker } from '../database/circuit-breaker.js';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import { compareOrderKeys, type InsertedOrders } from '../database/order.writer.js';
import type { Span, SpanContext } from '@opentelemetry/api';
import { contextOf, inChildSpan, startBatchSpan, tracingActive } from '../observability/tracing.js';
import type { Outcome, Settled, SettledListener } from './outcome.js';
import type { Purchase } from '@flashsale/contract';

export interface BatcherOptions {
  maxBatchSize: number;
  maxWaitMs: number;
  maxBatchesInFlight: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Attempts at a batch failing with an unclassified error before its messages are handed back. */
  maxAttempts: number;
  /** The worker's shutdown: a batch waiting to try again gives up, its messages left unacked. */
  signal?: AbortSignal;
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

/**
 * What became of one distinct order of a batch: written (new or existing), refused by the database (a
 * rejection outcome), or an error to hand back to the broker.
 */
type WriteResult = Written | Outcome | Error;

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
    const results = new Array<WriteResult>(candidates.length);
    await this.writeIsolatingFailures(candidates, 0, results, 1, span);
    return batch.map(({ purchase, token }, index): Settled<T> => {
      const result = results[candidateOf[index] as number];
      if (result === undefined || result instanceof Error || 'kind' in result) {
        return { token, outcome: this.failureOutcome(purchase, result) };
      }
      const kind = result.inserted && writtenFirst[index] ? 'confirmed' : 'duplicate';
      return { token, outcome: { kind, purchase, committedAt: result.committedAt } };
    });
  }

  /** Waits before the next attempt; ends early at shutdown (the loop then gives up). */
  private backOff(attempt: number): Promise<void> {
    return sleep(
      backoffDelayMs(attempt, this.options.retryBaseMs, this.options.retryMaxMs),
      this.options.signal,
    );
  }

  private failureOutcome(purchase: Purchase, result: Error | Outcome | undefined): Outcome {
    if (result && !(result instanceof Error)) return { ...result, purchase };
    return { kind: 'retry', purchase, error: result ?? new Error('no result for this purchase') };
  }

  /**
   * Inserts `candidates` (distinct keys) and sets, for each, its result at `results[offset + i]`: written, a
   * rejection outcome (the database refuses this row) or the error to hand back to the broker.
   */
  private async writeIsolatingFailures(
    candidates: readonly Purchase[],
    offset: number,
    results: WriteResult[],
    firstAttempt: number,
    span: Span | undefined,
  ): Promise<void> {
    const settleAll = (result: WriteResult) => results.fill(result, offset, offset + candidates.length);
    let failedBefore = false;
    let transientFailures = 0;
    let unclassifiedFailures = 0;
    for (let attempt = firstAttempt; ; attempt++) {
      // Shutting down: a first attempt still runs (the drain writes what is gathered), a retry does not wait.
      if (this.abandoned || (failedBefore && this.options.signal?.aborted)) {
        settleAll(new ShutdownInterruptedError('the worker shut down before this purchase was written'));
        return;
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
        for (let index = 0; index < candidates.length; index++) {
          results[offset + index] = isNew[index] ? inserted : existing;
        }
        return;
      } catch (cause) {
        failedBefore = true;
        const kind = classifyDatabaseError(cause);
        const error = new OrderBatchError(candidates, attempt, databaseErrorCode(cause), { cause });
        this.metrics.batchFailed(error.code);
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
        if (kind === 'poison' && candidates.length > 1) {
          // Some row of this batch is refused: split until the refused one stands alone.
          const middle = Math.ceil(candidates.length / 2);
          await Promise.all([
            this.writeIsolatingFailures(candidates.slice(0, middle), offset, results, attempt, span),
            this.writeIsolatingFailures(candidates.slice(middle), offset + middle, results, attempt, span),
          ]);
          return;
        }
        if (kind === 'poison') {
          const [only] = candidates as [Purchase];
          // The reporter logs the rejection with the message's identifiers.
          this.logger.debug(`database refused sale ${only.saleId}, user ${only.userId}: ${error.message}`);
          results[offset] = {
            kind: 'rejected',
            purchase: only,
            rejection: {
              code: 'REFUSED_BY_DATABASE',
              reason: `database refused the order (${error.code ?? 'no code'}): ${databaseErrorMessage(cause)}`,
            },
          };
          return;
        }
        // Unclassified (a missing table, a refused permission): not a row's fault, so no bisection; the whole
        // batch backs off, and after its last attempt goes back to the broker.
        this.logger.warn(error.message);
        if (++unclassifiedFailures >= this.options.maxAttempts) {
          settleAll(error);
          return;
        }
        await this.backOff(unclassifiedFailures);
      }
    }
  }
}

/** Purchases handed back to the broker unwritten: each message stays unacked and comes back. */
function asRetries<T>(items: readonly Pending<T>[], error: Error): Settled<T>[] {
  return items.map(({ purchase, token }) => ({ token, outcome: { kind: 'retry', purchase, error } }));
}
