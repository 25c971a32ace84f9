import { Logger } from '@nestjs/common';
import type { Settings } from '../config/settings.js';
import { WarningAllowance } from '../common/warning-allowance.js';
import type { AuditTrail } from './audit-trail.js';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import type { AuditEvent } from './audit-event.js';
import { MESSAGE_OUTCOMES } from '../observability/metric-names.js';
import type { CountedOutcome } from '../observability/worker-metrics.js';
import type { MessageFacts, Outcome, OutcomeListener, Reported } from '../purchases/outcome.js';

type SummarisedOutcome = Outcome['kind'];
/** The outcomes whose message is named in a warn line of its own. */
type WarnedOutcome = Extract<SummarisedOutcome, 'rejected' | 'retry'>;

/** The metric outcome of each kind, when its ack, requeue or dead-letter reached the broker. */
const COUNTED: Record<Outcome['kind'], CountedOutcome> = {
  confirmed: 'confirmed',
  duplicate: 'duplicate',
  rejected: 'rejected',
  retry: 'retried',
};

/** How often, at most, the info-level summary of settled messages is logged. */
export const OUTCOME_SUMMARY_INTERVAL_MS = 10_000;

/** The reporter's options from the settings: the one mapping. */
export function outcomeReporterOptions(
  settings: Pick<Settings, 'WORKER_ID' | 'LOG_LEVEL' | 'MESSAGE_WARNINGS_PER_10S'>,
): OutcomeReporterOptions {
  return {
    workerId: settings.WORKER_ID,
    debugEnabled: settings.LOG_LEVEL === 'debug' || settings.LOG_LEVEL === 'trace',
    messageWarningsPerInterval: settings.MESSAGE_WARNINGS_PER_10S,
  };
}

export interface OutcomeReporterOptions {
  /** This worker's name, in the audit events' details. */
  workerId: string;
  /** Logs every settled message at debug. */
  debugEnabled: boolean;
  /**
   * Most warn lines about single messages (dead-lettered, handed back) per summary interval; past it they are
   * counted, and one warn line at the end of the interval says how many were not logged. 0: no limit.
   */
  messageWarningsPerInterval: number;
  summaryIntervalMs?: number;
}

/**
 * The one place that turns an outcome into an audit event, a metric and a log line: per message at debug
 * (failures at warn, up to a limit per interval), and at info one summary of the counts per interval with
 * messages, so the info log grows with time, not with traffic. The last summary is written at shutdown.
 * A flood of poison must not become a flood of synchronous log writes (docs/benchmarks.md, "Warn lines per
 * message, capped"): the dead-letter queue and `audit_logs` hold every rejected message with its reason.
 */
export class OutcomeReporter implements OutcomeListener {
  private readonly logger = new Logger('PurchaseOutcome');
  private counts = emptyCounts();
  private summaryStartedAt = 0;
  private summaryTimer: NodeJS.Timeout | undefined;
  private readonly summaryIntervalMs: number;
  private readonly warnings: WarningAllowance;
  /** Warn lines about single messages left out past the limit in this interval, by outcome. */
  private notLogged: Record<WarnedOutcome, number> = { rejected: 0, retry: 0 };

  constructor(
    private readonly audit: AuditTrail,
    private readonly metrics: WorkerMetrics,
    private readonly options: OutcomeReporterOptions,
  ) {
    this.summaryIntervalMs = options.summaryIntervalMs ?? OUTCOME_SUMMARY_INTERVAL_MS;
    this.warnings = new WarningAllowance(options.messageWarningsPerInterval);
  }

  /** Reports a batch: one metric update per outcome kind, the audit events queued together. */
  report(reported: readonly Reported[]): void {
    const createdAt = new Date();
    const counted = Object.fromEntries(MESSAGE_OUTCOMES.map((kind) => [kind, 0])) as Record<
      CountedOutcome,
      number
    >;
    const events: AuditEvent[] = [];
    for (const { outcome, facts } of reported) {
      this.counts[outcome.kind]++;
      counted[facts.settled ? COUNTED[outcome.kind] : 'failed']++;
      const event = this.describe(outcome, facts, createdAt);
      if (event) events.push(event);
    }
    for (const kind of MESSAGE_OUTCOMES) if (counted[kind] > 0) this.metrics.settled(kind, counted[kind]);
    this.audit.recordAll(events);
    this.startSummary();
  }

  /** The audit event of one outcome (none for a retry), after its latency metric and log line. */
  private describe(outcome: Outcome, message: MessageFacts, createdAt: Date): AuditEvent | undefined {
    switch (outcome.kind) {
      case 'confirmed':
      case 'duplicate': {
        const { purchase } = outcome;
        this.metrics.committed(
          Math.max(0, outcome.committedAt.getTime() - purchase.timestamp.getTime()) / 1000,
        );
        if (this.options.debugEnabled) {
          this.logger.debug({
            msg: `order ${outcome.kind}`,
            saleId: purchase.saleId,
            userId: purchase.userId,
            ...message,
          });
        }
        return {
          event: outcome.kind === 'confirmed' ? 'ORDER_CONFIRMED' : 'ORDER_DUPLICATE',
          saleId: purchase.saleId,
          userId: purchase.userId,
          details: {
            messageId: message.messageId,
            deliveryCount: message.deliveryCount,
            workerId: this.options.workerId,
          },
          createdAt,
        };
      }
      case 'rejected':
        if (this.mayWarn('rejected')) {
          this.logger.warn({
            msg: `message dead-lettered: ${outcome.rejection.reason}`,
            saleId: outcome.purchase?.saleId ?? outcome.rejection.identifiers?.saleId,
            userId: outcome.purchase?.userId ?? outcome.rejection.identifiers?.userId,
            code: outcome.rejection.code,
            ...message,
          });
        }
        return {
          event: 'MESSAGE_REJECTED',
          saleId: outcome.purchase?.saleId ?? null,
          userId: outcome.purchase?.userId ?? null,
          details: {
            ...outcome.rejection.identifiers,
            reason: outcome.rejection.reason,
            code: outcome.rejection.code,
            messageId: message.messageId,
            deliveryCount: message.deliveryCount,
            workerId: this.options.workerId,
          },
          createdAt,
        };
      case 'retry':
        if (this.mayWarn('retry')) {
          this.logger.warn({
            msg: `message handed back to the broker for redelivery: ${outcome.error.message}`,
            saleId: outcome.purchase?.saleId,
            userId: outcome.purchase?.userId,
            ...message,
          });
        }
        return undefined;
    }
  }

  /** Whether a warn line about one more message fits this interval's limit; counted as not logged if not. */
  private mayWarn(kind: WarnedOutcome): boolean {
    if (this.warnings.take()) return true;
    this.notLogged[kind]++;
    return false;
  }

  /** Logs the summary of what was settled since the last one (at shutdown). */
  close(): void {
    this.logSummary();
  }

  private startSummary(): void {
    if (this.summaryTimer) return;
    // Only while messages flow: an idle worker keeps no timer and logs nothing.
    this.summaryStartedAt = Date.now();
    this.summaryTimer = setTimeout(() => this.logSummary(), this.summaryIntervalMs).unref();
  }

  private logSummary(): void {
    clearTimeout(this.summaryTimer);
    this.summaryTimer = undefined;
    const { confirmed, duplicate, rejected, retry } = this.counts;
    const total = confirmed + duplicate + rejected + retry;
    if (total === 0) return;
    this.counts = emptyCounts();
    const periodMs = Date.now() - this.summaryStartedAt;
    this.logger.log({
      msg: `settled ${total} messages`,
      confirmed,
      duplicate,
      rejected,
      retried: retry,
      periodMs,
    });
    const notLogged = this.notLogged;
    const leftOut = this.warnings.restart();
    this.notLogged = { rejected: 0, retry: 0 };
    if (leftOut === 0) return;
    this.logger.warn({
      msg:
        `${leftOut} more messages dead-lettered or handed back were not logged ` +
        `one by one (at most ${this.options.messageWarningsPerInterval} per ` +
        `${this.summaryIntervalMs / 1000} s: MESSAGE_WARNINGS_PER_10S); the dead-letter queue and audit_logs ` +
        'hold each rejected message with its reason',
      rejected: notLogged.rejected,
      retried: notLogged.retry,
      periodMs,
    });
  }
}

function emptyCounts(): Record<SummarisedOutcome, number> {
  return { confirmed: 0, duplicate: 0, rejected: 0, retry: 0 };
}
