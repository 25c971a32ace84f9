import { Logger } from '@nestjs/common';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import type { AuditEvent, AuditSink } from './audit-event.js';

export interface AuditTrailOptions {
  /** Events that trigger a flush at once. */
  batchSize: number;
  /** Longest an event waits before it is written. */
  flushIntervalMs: number;
  /** Most events held; past it new events are dropped and counted. */
  maxBufferedEvents: number;
  /** Longest wait before retrying a failed flush. */
  maxRetryDelayMs: number;
}

// One INSERT carries at most this many rows, so a backlog after an outage drains in bounded statements.
const MAX_ROWS_PER_INSERT = 1000;

/**
 * The audit trail: `record` only buffers (never awaited by an order), a flush writes one multi-row INSERT
 * when `batchSize` events are buffered or `flushIntervalMs` after the first buffered one. A failed flush
 * keeps its events and retries with back-off; `close` writes what is left.
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

  get dropped(): number {
    return this.droppedEvents;
  }

  /** Buffers one event; returns at once. */
  record(event: AuditEvent): void {
    if (this.bufferedEvents >= this.options.maxBufferedEvents) {
      this.droppedEvents++;
      this.metrics.auditDroppedEvents(1);
      if (this.droppedEvents === 1 || this.droppedEvents % 10_000 === 0) {
        this.logger.error(
          `audit buffer full (${this.bufferedEvents} events): ${this.droppedEvents} events dropped`,
        );
      }
      return;
    }
    this.buffer.push(event);
    this.metrics.auditBufferSize.set(this.bufferedEvents);
    if (this.flushing) return; // the running flush picks this event up
    if (this.buffer.length >= this.options.batchSize && this.consecutiveFailures === 0) {
      this.startFlush();
    } else {
      this.timer ??= setTimeout(() => this.startFlush(), this.options.flushIntervalMs);
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
      await new Promise((resolve) => setTimeout(resolve, wait));
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
        await this.sink.write(chunk);
      } catch (error) {
        // Keep the events, oldest first, and retry later: an audit write never blocks an order.
        this.buffer = chunk.concat(this.buffer);
        this.consecutiveFailures++;
        this.metrics.auditFlushFailed();
        this.logger.warn(
          `audit flush of ${chunk.length} events failed (attempt ${this.consecutiveFailures}); kept for retry: ${(error as Error).message}`,
        );
        return;
      } finally {
        this.beingWritten = 0;
        this.metrics.auditBufferSize.set(this.bufferedEvents);
      }
      this.consecutiveFailures = 0;
      this.metrics.auditWritten(chunk.length);
      // Below a full batch, the rest waits for the interval like any other event.
      if (this.buffer.length < this.options.batchSize && !this.closing) return;
    }
  }

  private retryDelayMs(): number {
    const exponential = this.options.flushIntervalMs * 2 ** Math.min(this.consecutiveFailures, 16);
    return Math.min(exponential, this.options.maxRetryDelayMs);
  }
}
