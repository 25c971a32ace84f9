import { Logger } from '@nestjs/common';
import type { AuditTrail } from '../audit/audit-trail.js';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import type { Outcome } from './outcome.js';

/** What the reporter needs to know of the message an outcome belongs to. */
export interface MessageFacts {
  messageId: string | undefined;
  deliveryTag: number;
  deliveryCount: number;
}

/** The one place that turns an outcome into an audit event, a metric and (for failures) a log line. */
export class OutcomeReporter {
  private readonly logger = new Logger('PurchaseOutcome');

  constructor(
    private readonly audit: AuditTrail,
    private readonly metrics: WorkerMetrics,
    private readonly workerId: string,
    private readonly debugEnabled: boolean,
  ) {}

  report(outcome: Outcome, message: MessageFacts): void {
    const createdAt = new Date();
    switch (outcome.kind) {
      case 'confirmed':
      case 'duplicate': {
        const { purchase } = outcome;
        this.metrics.settled(outcome.kind);
        this.metrics.committed(
          Math.max(0, outcome.committedAt.getTime() - purchase.timestamp.getTime()) / 1000,
        );
        this.audit.record({
          event: outcome.kind === 'confirmed' ? 'ORDER_CONFIRMED' : 'ORDER_DUPLICATE',
          saleId: purchase.saleId,
          userId: purchase.userId,
          details: {
            messageId: message.messageId,
            deliveryCount: message.deliveryCount,
            workerId: this.workerId,
          },
          createdAt,
        });
        if (this.debugEnabled) {
          this.logger.debug({
            msg: `order ${outcome.kind}`,
            saleId: purchase.saleId,
            userId: purchase.userId,
            ...message,
          });
        }
        return;
      }
      case 'rejected': {
        this.metrics.settled('rejected');
        this.audit.record({
          event: 'MESSAGE_REJECTED',
          saleId: outcome.purchase?.saleId ?? null,
          userId: outcome.purchase?.userId ?? null,
          details: {
            reason: outcome.rejection.reason,
            code: outcome.rejection.code,
            messageId: message.messageId,
            deliveryCount: message.deliveryCount,
            workerId: this.workerId,
          },
          createdAt,
        });
        this.logger.warn({
          msg: `message dead-lettered: ${outcome.rejection.reason}`,
          saleId: outcome.purchase?.saleId,
          userId: outcome.purchase?.userId,
          code: outcome.rejection.code,
          ...message,
        });
        return;
      }
      case 'retry':
        this.metrics.settled('retried');
        this.logger.warn({
          msg: `message handed back to the broker for redelivery: ${outcome.error.message}`,
          saleId: outcome.purchase?.saleId,
          userId: outcome.purchase?.userId,
          ...message,
        });
        return;
    }
  }
}
