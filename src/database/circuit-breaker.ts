import { Logger } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { backoffDelayMs, sleep } from '../common/backoff.js';
import type { Settings } from '../config/settings.js';

export interface CircuitBreakerOptions {
  /** Consecutive transient failures that open the circuit (CIRCUIT_FAILURE_THRESHOLD). */
  failureThreshold: number;
  /** First probe delay in ms (RETRY_BASE_MS), doubled per failed probe up to `retryMaxMs`, with jitter. */
  retryBaseMs: number;
  /** Longest delay between probes in ms (RETRY_MAX_MS). */
  retryMaxMs: number;
  /** What a failure says about the database, in an operator's words (for /ready and the logs). */
  describe?: (error: Error) => string;
  /** Shutdown: probing stops, and `whenClosed` resolves so that nothing waits on it any more. */
  signal?: AbortSignal;
}

/** The breaker's options from the settings: the one mapping. */
export function circuitBreakerOptions(
  settings: Pick<Settings, 'CIRCUIT_FAILURE_THRESHOLD' | 'RETRY_BASE_MS' | 'RETRY_MAX_MS'>,
): Pick<CircuitBreakerOptions, 'failureThreshold' | 'retryBaseMs' | 'retryMaxMs'> {
  return {
    failureThreshold: settings.CIRCUIT_FAILURE_THRESHOLD,
    retryBaseMs: settings.RETRY_BASE_MS,
    retryMaxMs: settings.RETRY_MAX_MS,
  };
}

/**
 * The database circuit breaker. Closed: writes go through. After `failureThreshold` consecutive
 * transient failures it opens: it emits `open` (the consumer pauses), probes the database at growing
 * intervals, and on the first successful probe closes again and emits `close` (the consumer resumes).
 * The probe must prove what the worker needs (that the database takes a write), not merely that it answers:
 * a hot standby answers `SELECT 1`.
 */
export class CircuitBreaker extends EventEmitter<{ open: [Error]; close: [] }> {
  private readonly logger = new Logger(CircuitBreaker.name);
  private consecutiveFailures = 0;
  private openSince: number | undefined;
  private fault = '';
  private closed: Promise<void> = Promise.resolve();
  private markClosed: () => void = () => undefined;

  constructor(
    private readonly probe: () => Promise<void>,
    private readonly options: CircuitBreakerOptions,
  ) {
    super();
    options.signal?.addEventListener('abort', () => this.markClosed(), { once: true });
  }

  get isOpen(): boolean {
    return this.openSince !== undefined;
  }

  /** Why the circuit is open, for /ready: the last failure in words and for how long; undefined while closed. */
  get openReason(): string | undefined {
    return this.openSince === undefined
      ? undefined
      : `${this.fault}; consuming paused, database circuit open for ${Math.round((Date.now() - this.openSince) / 1000)} s`;
  }

  /** Resolves at once while closed, else when a probe succeeds or the worker shuts down. */
  whenClosed(): Promise<void> {
    return this.closed;
  }

  recordSuccess(): void {
    this.consecutiveFailures = 0;
  }

  recordFailure(error: Error): void {
    this.consecutiveFailures++;
    if (this.isOpen || this.consecutiveFailures < this.options.failureThreshold) return;
    this.openSince = Date.now();
    this.fault = this.described(error);
    this.closed = this.options.signal?.aborted
      ? Promise.resolve()
      : new Promise((resolve) => (this.markClosed = resolve));
    this.logger.warn(
      `database circuit open after ${this.consecutiveFailures} consecutive failures; pausing consumption: ${this.fault}`,
    );
    this.emit('open', error);
    void this.probeUntilHealthy();
  }

  private described(error: Error): string {
    return this.options.describe?.(error) ?? error.message;
  }

  private async probeUntilHealthy(): Promise<void> {
    const { signal } = this.options;
    for (let attempt = 1; !signal?.aborted; attempt++) {
      await sleep(backoffDelayMs(attempt, this.options.retryBaseMs, this.options.retryMaxMs), signal);
      if (signal?.aborted) return;
      try {
        await this.probe();
      } catch (error) {
        this.fault = this.described(error as Error);
        this.logger.warn(`database probe ${attempt} failed: ${this.fault}`);
        continue;
      }
      this.logger.log(
        `database reachable again after ${Math.round((Date.now() - (this.openSince ?? Date.now())) / 1000)} s; circuit closed`,
      );
      this.openSince = undefined;
      this.consecutiveFailures = 0;
      this.markClosed();
      this.emit('close');
      return;
    }
  }
}
