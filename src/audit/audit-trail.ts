import { Logger } from '@nestjs/common';
import type { Settings } from '../config/settings.js';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import { codeUnitsHex, safeText } from '../common/safe-text.js';
import { backoffDelayMs, sleep } from '../common/backoff.js';
import { classifyDatabaseError, databaseErrorCode } from '../database/database-errors.js';
import { RowsWriteInterrupted, writeIsolatingRefusals } from '../database/refused-rows.js';
import type { AuditEvent, AuditSink } from './audit-event.js';

export interface AuditTrailOptions {
  /** Events that trigger a flush at once (AUDIT_BATCH_SIZE). */
  batchSize: number;
  /** Longest an event waits before it is written, in ms (AUDIT_FLUSH_INTERVAL_MS). */
  flushIntervalMs: number;
  /** Most events held; past it new events are dropped and counted (AUDIT_BUFFER_MAX). */
  maxBufferedEvents: number;
  /** Longest wait before retrying a failed flush, in ms (RETRY_MAX_MS). */
  retryMaxMs: number;
  /**
   * Whether a failed write is the database refusing some row of it (bad data: the same rows fail every
   * time), found by bisecting the chunk. Any other failure (database away, unknown) keeps the events for a
   * later attempt.
   */
  isRefusal?: (error: unknown) => boolean;
}

/** The audit trail's options from the settings: the one mapping. */
export function auditTrailOptions(
  settings: Pick<
    Settings,
    'AUDIT_BATCH_SIZE' | 'AUDIT_FLUSH_INTERVAL_MS' | 'AUDIT_BUFFER_MAX' | 'RETRY_MAX_MS'
  >,
): AuditTrailOptions {
  return {
    batchSize: settings.AUDIT_BATCH_SIZE,
    flushIntervalMs: settings.AUDIT_FLUSH_INTERVAL_MS,
    maxBufferedEvents: settings.AUDIT_BUFFER_MAX,
    retryMaxMs: settings.RETRY_MAX_MS,
  };
}

// One INSERT carries at most this many rows, so a backlog after an outage drains in bounded statements.
const MAX_ROWS_PER_INSERT = 1000;

/**
 * The audit trail: `recordAll` only buffers (never awaited by an order), a flush writes one multi-row INSERT
 * when `batchSize` events are buffered or `flushIntervalMs` after the first buffered one. A flush that fails
 * because the database is away keeps its events and retries with back-off. A flush the database refuses
 * (one row it cannot store fails the whole INSERT) is bisected like the order batches: every other row is
 * written, and the one refused row is written in a reduced, safe form and counted; it never blocks the rows
 * behind it. `close` writes what is left.
 */
export class AuditTrail {
  private readonly logger = new Logger(AuditTrail.name);
  private buffer: AuditEvent[] = [];
  /** Events taken out of the buffer by the write in progress; they still count against the bound. */
  private beingWritten = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private consecutiveFailures = 0;
  private droppedEvents = 0;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly sink: AuditSink,
    private readonly options: AuditTrailOptions,
    private readonly metrics: WorkerMetrics,
  ) {}

  /** Events held in memory: buffered or being written. */
  get bufferedEvents(): number {
    return this.buffer.length + this.beingWritten;
  }

  /** Buffers a batch of events; returns at once. Past the bound, the events that do not fit are dropped. */
  recordAll(events: readonly AuditEvent[]): void {
    if (events.length === 0) return;
    const room = Math.max(0, this.options.maxBufferedEvents - this.bufferedEvents);
    const kept = events.length <= room ? events : events.slice(0, room);
    if (kept.length < events.length) this.drop(events.length - kept.length);
    for (const event of kept) this.buffer.push(event);
    this.metrics.auditBufferSize.set(this.bufferedEvents);
    if (this.flushing || kept.length === 0) return; // the running flush picks these events up
    if (this.buffer.length >= this.options.batchSize && this.consecutiveFailures === 0) {
      this.startFlush();
    } else {
      this.timer ??= setTimeout(() => this.startFlush(), this.options.flushIntervalMs);
    }
  }

  private drop(count: number): void {
    const before = this.droppedEvents;
    this.droppedEvents += count;
    this.metrics.auditDroppedEvents(count);
    if (before === 0 || Math.floor(before / 10_000) !== Math.floor(this.droppedEvents / 10_000)) {
      this.logger.error(
        `audit buffer full (${this.bufferedEvents} events): ${this.droppedEvents} events dropped`,
      );
    }
  }

  /** Writes everything buffered now; resolves when the buffer is empty or a write failed. */
  async flush(): Promise<void> {
    this.startFlush();
    await this.flushing;
  }

  /** Flushes what is left, retrying failed writes until `deadline` (epoch ms); idempotent. */
  close(deadline: number): Promise<void> {
    this.closing ??= this.drainUntil(deadline);
    return this.closing;
  }

  private async drainUntil(deadline: number): Promise<void> {
    this.logger.log(`closing: flushing ${this.bufferedEvents} audit events`);
    while (this.bufferedEvents > 0) {
      await this.flush();
      if (this.buffer.length === 0) break;
      const wait = Math.min(this.retryDelayMs(), deadline - Date.now());
      if (wait <= 0) {
        this.logger.error(
          `closed with ${this.buffer.length} audit events unwritten: the database did not take them`,
        );
        return;
      }
      await sleep(wait);
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.logger.log('closed: audit buffer empty');
  }

  private startFlush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing ??= this.writeBuffered().finally(() => {
      this.flushing = undefined;
      this.scheduleNext();
    });
  }

  private scheduleNext(): void {
    if (this.buffer.length === 0 || this.closing) return;
    if (this.consecutiveFailures > 0) {
      this.timer ??= setTimeout(() => this.startFlush(), this.retryDelayMs());
    } else if (this.buffer.length >= this.options.batchSize) {
      this.startFlush();
    } else {
      this.timer ??= setTimeout(() => this.startFlush(), this.options.flushIntervalMs);
    }
  }

  private async writeBuffered(): Promise<void> {
    while (this.buffer.length > 0) {
      const chunk = this.buffer.splice(0, MAX_ROWS_PER_INSERT);
      this.beingWritten = chunk.length;
      try {
        const kept = await this.writeChunk(chunk);
        if (kept.length > 0) {
          // Keep the events not yet written, oldest first, and retry later: an audit write never blocks an order.
          this.buffer = kept.concat(this.buffer);
          return;
        }
      } finally {
        this.beingWritten = 0;
        this.metrics.auditBufferSize.set(this.bufferedEvents);
      }
      this.consecutiveFailures = 0;
      // Below a full batch, the rest waits for the interval like any other event.
      if (this.buffer.length < this.options.batchSize && !this.closing) return;
    }
  }

  /**
   * Writes one chunk, each event the database refuses on its own in its reduced form, in place; returns the
   * events to keep for a later attempt (none when the chunk is done with), counting the failed attempt.
   */
  private async writeChunk(chunk: AuditEvent[]): Promise<AuditEvent[]> {
    try {
      await writeIsolatingRefusals(
        chunk,
        (part) => (part.length === 1 ? this.writeOneOrReduced(part[0] as AuditEvent) : this.writePart(part)),
        (error) => this.isRefusal(error),
      );
      return [];
    } catch (error) {
      if (!(error instanceof RowsWriteInterrupted)) throw error;
      const kept = chunk.slice((error as RowsWriteInterrupted<number>).results.length);
      this.consecutiveFailures++;
      this.metrics.auditFlushFailed();
      this.logger.warn(
        `audit flush failed (attempt ${this.consecutiveFailures}); ${kept.length} events kept for retry: ${(error.cause as Error).message}`,
      );
      return kept;
    }
  }

  private async writePart(part: readonly AuditEvent[]): Promise<number[]> {
    await this.sink.write(part);
    this.metrics.auditWritten(part.length);
    return part.map(() => 1);
  }

  /** One event, or, when the database refuses it, its reduced form in its place. */
  private async writeOneOrReduced(event: AuditEvent): Promise<number[]> {
    try {
      return await this.writePart([event]);
    } catch (error) {
      if (!this.isRefusal(error)) throw error;
      await this.writeReduced(event, error);
      return [1];
    }
  }

  /**
   * The one event the database refuses: written as its name, the ids made safe (and kept exactly as hex in
   * the details) and the reason "unstorable details", and counted. If even that is refused it is dropped,
   * counted and logged: it must not hold back the events behind it.
   */
  private async writeReduced(event: AuditEvent, refusal: unknown): Promise<void> {
    const code = databaseErrorCode(refusal);
    const reduced: AuditEvent = {
      event: event.event,
      saleId: null,
      userId: event.userId === null ? null : safeText(event.userId, 255),
      details: {
        reason: 'unstorable details',
        ...(code ? { refusedWith: code } : {}),
        ...(event.saleId === null ? {} : { saleIdHex: codeUnitsHex(event.saleId) }),
        ...(event.userId === null ? {} : { userIdHex: codeUnitsHex(event.userId) }),
      },
      createdAt: event.createdAt,
    };
    this.metrics.auditUnstorable();
    this.logger.error({
      msg: `audit event ${event.event} refused by the database (${code ?? 'no code'}); writing it without its details`,
      saleId: event.saleId === null ? undefined : safeText(event.saleId, 64),
      userId: reduced.userId,
      err: refusal,
    });
    try {
      await this.sink.write([reduced]);
      this.metrics.auditWritten(1);
    } catch (error) {
      // The database went away meanwhile: the event is kept for the next attempt.
      if (!this.isRefusal(error)) throw error;
      this.droppedEvents++;
      this.metrics.auditDroppedEvents(1);
      this.logger.error(
        `audit event ${event.event} dropped: even its reduced form was refused: ${(error as Error).message}`,
      );
    }
  }

  private isRefusal(error: unknown): boolean {
    return (this.options.isRefusal ?? isRowRefusal)(error);
  }

  /** The flush interval doubled per failed flush, up to the ceiling; no jitter: one writer, nothing to spread. */
  private retryDelayMs(): number {
    const noJitter = () => 1;
    return backoffDelayMs(
      this.consecutiveFailures + 1,
      this.options.flushIntervalMs,
      this.options.retryMaxMs,
      noJitter,
    );
  }
}

/**
 * The database refuses the data of some row: a data exception or constraint (classes 22 and 23, e.g. a NUL in
 * jsonb, 22P05) or a value past a limit (class 54, e.g. a jsonb value too large).
 */
function isRowRefusal(error: unknown): boolean {
  return classifyDatabaseError(error) === 'poison' || databaseErrorCode(error)?.startsWith('54') === true;
}
