import { Logger } from '@nestjs/common';
import type { Context } from '@opentelemetry/api';
import { inChildSpanSync } from '../observability/tracing.js';
import type { Settings } from '../config/settings.js';
import type { Delivery } from '../consumer/delivery.js';
import {
  isCommitted,
  type Outcome,
  type OutcomeListener,
  type OutcomeSettler,
  type Reported,
  type Settled,
} from '../purchases/outcome.js';
import type { AckReceipt } from './ack-coalescer.js';
import { type DeadLetterPublisher, UnroutablePublishError } from './dead-letter.publisher.js';
import { backoffDelayMs, sleep } from '../common/backoff.js';
import { ShutdownInterruptedError } from '../common/shutdown-signal.js';
import { safeProperty } from '../common/safe-text.js';
import { asksForReply } from './reply.message.js';

export interface SettlerOptions {
  /** How a retry goes back (QUEUE_TYPE): quorum, a nack the queue counts; classic, a republish. */
  queueType: 'quorum' | 'classic';
  /** Deliveries of a message before it is dead-lettered (MAX_DELIVERIES). */
  maxDeliveries: number;
  /** First back-off before a requeue, in ms (RETRY_BASE_MS); doubles per delivery, with jitter. */
  retryBaseMs: number;
  /** Longest back-off before a requeue, in ms (RETRY_MAX_MS). */
  retryMaxMs: number;
  /** The worker's shutdown: every back-off ends at once and its message is left unacked. */
  signal?: AbortSignal;
}

/** The settler's options from the settings: the one mapping. */
export function settlerOptions(
  settings: Pick<Settings, 'QUEUE_TYPE' | 'MAX_DELIVERIES' | 'RETRY_BASE_MS' | 'RETRY_MAX_MS'>,
  signal: AbortSignal,
): SettlerOptions {
  return {
    queueType: settings.QUEUE_TYPE,
    maxDeliveries: settings.MAX_DELIVERIES,
    retryBaseMs: settings.RETRY_BASE_MS,
    retryMaxMs: settings.RETRY_MAX_MS,
    signal,
  };
}

/** Told when a publish came back unroutable (its queue is missing), and when a dead letter got through. */
export interface QueueWatch {
  queueMissing(queue: string): void;
  queueBack(): void;
}

/**
 * Given the settled messages that asked for a reply (`replyTo`), once their ack is sent: confirmed and
 * duplicate after the ack of their committed order, rejected after the dead-letter confirm and the ack.
 */
export interface ReplySender {
  send(settled: readonly Settled<Delivery>[]): void;
}

/**
 * The one place that turns an outcome into ack, requeue or dead-letter, then reports it.
 * - confirmed / duplicate: ack (the order is committed).
 * - rejected: publish to the DLQ with confirms, then ack. A dead-letter publish that fails (not confirmed,
 *   or returned because the DLQ is missing) is never followed by an ack: the message waits out the retry
 *   back-off and goes back to its queue, where the delivery limit still counts it.
 * - retry: after a back-off that grows with the delivery count, requeue (quorum: nack, counted by
 *   `x-delivery-limit`; classic: republish with `x-retry-count`); at the last allowed delivery the message
 *   is dead-lettered with the error as its reason instead.
 * The settler decides and the delivery acts: its `ack` and `requeue` go on the channel that delivered it, only
 * while it is open (a delivery tag from a dead channel means nothing to the broker, which redelivers the
 * message anyway), and `finish` takes it out of the in-flight count.
 */
export class MessageSettler implements OutcomeSettler<Delivery> {
  private readonly logger = new Logger(MessageSettler.name);

  constructor(
    private readonly deadLetters: DeadLetterPublisher,
    private readonly reporter: OutcomeListener,
    private readonly replies: ReplySender,
    private readonly queues: QueueWatch,
    private readonly options: SettlerOptions,
  ) {}

  /**
   * Settles a batch of outcomes from the pipeline: the committed ones are acked at once (under the batch's
   * `ack` span while tracing is on) and reported together when their acks are out, the others one by one,
   * each when the broker has answered or its back-off is over.
   */
  settleBatch(settled: readonly Settled<Delivery>[], trace?: Context): void {
    const committed = settled.filter(({ outcome }) => isCommitted(outcome));
    if (committed.length > 0) {
      inChildSpanSync(trace, 'ack', () => this.settleCommitted(committed));
    }
    if (committed.length === settled.length) return;
    for (const { token: delivery, outcome } of settled) {
      if (isCommitted(outcome)) continue;
      this.settle(delivery, outcome)
        .catch((error: Error) =>
          this.logger.error({
            msg: `settling a delivery failed: ${error.message}`,
            deliveryTag: delivery.message.fields.deliveryTag,
            messageId: safeProperty(delivery.message.properties.messageId),
            err: error,
          }),
        )
        .finally(() => delivery.finish(outcome.kind));
    }
  }

  /**
   * Settles one message whose outcome needs the broker's answer or a back-off (rejected, retry) and reports
   * it; a committed one (confirmed, duplicate) is settled at once.
   */
  async settle(delivery: Delivery, outcome: Outcome): Promise<void> {
    const { outcome: settled, sent } = await this.apply(delivery, outcome);
    this.reporter.report([{ outcome: settled, facts: factsOf(delivery, sent) }]);
  }

  /**
   * Acks a batch of committed purchases (confirmed or duplicate); once each ack has reached its channel or
   * was lost with it, reports them together and finishes them. A lost ack is reported as not settled, so it
   * is counted as failed only: the broker redelivers the message.
   */
  settleCommitted(committed: readonly Settled<Delivery>[]): void {
    const acks = new CommittedAcks(committed, this.reporter);
    let replies: Settled<Delivery>[] | undefined;
    for (let index = 0; index < committed.length; index++) {
      const settled = committed[index] as Settled<Delivery>;
      if (!this.sent(settled.token, 'ack', settled.token.ack(acks, index))) acks.acked(index, false);
      else if (asksForReply(settled.token.message.properties)) (replies ??= []).push(settled);
    }
    if (replies) this.reply(replies);
  }

  /** The final outcome, and whether its ack, requeue or republish reached the channel. */
  private async apply(delivery: Delivery, outcome: Outcome): Promise<{ outcome: Outcome; sent: boolean }> {
    switch (outcome.kind) {
      case 'confirmed':
      case 'duplicate':
        return { outcome, sent: await this.ackAndReply(delivery, outcome) };
      case 'rejected':
        try {
          await this.deadLetters.publish(delivery, outcome.rejection);
        } catch (error) {
          if (error instanceof UnroutablePublishError) this.queues.queueMissing(error.queue);
          const retry: Extract<Outcome, { kind: 'retry' }> = { kind: 'retry', error: error as Error };
          if (outcome.purchase) retry.purchase = outcome.purchase;
          return this.backOffAndRequeue(delivery, retry);
        }
        this.queues.queueBack();
        return { outcome, sent: await this.ackAndReply(delivery, outcome) };
      case 'retry':
        return this.retry(delivery, outcome);
    }
  }

  private async retry(
    delivery: Delivery,
    outcome: Extract<Outcome, { kind: 'retry' }>,
  ): Promise<{ outcome: Outcome; sent: boolean }> {
    // Shutting down: the channel closes next and the broker redelivers the message to another worker.
    if (outcome.error instanceof ShutdownInterruptedError) return { outcome, sent: false };
    if (delivery.deliveryCount >= this.options.maxDeliveries) {
      const rejected: Outcome = {
        kind: 'rejected',
        rejection: {
          code: 'DELIVERY_LIMIT',
          reason: `failed on each of ${delivery.deliveryCount} deliveries; last error: ${outcome.error.message}`,
        },
      };
      if (outcome.purchase) rejected.purchase = outcome.purchase;
      return this.apply(delivery, rejected);
    }
    return this.backOffAndRequeue(delivery, outcome);
  }

  /** Never a hot requeue loop: the message waits out a back-off that grows with its delivery count. */
  private async backOffAndRequeue(
    delivery: Delivery,
    outcome: Extract<Outcome, { kind: 'retry' }>,
  ): Promise<{ outcome: Outcome; sent: boolean }> {
    await sleep(
      backoffDelayMs(delivery.deliveryCount, this.options.retryBaseMs, this.options.retryMaxMs),
      this.options.signal,
    );
    // Shutting down: the message stays unacked and comes back, to this worker's successor.
    if (this.options.signal?.aborted) return { outcome, sent: false };
    if (this.options.queueType === 'classic') {
      try {
        await this.deadLetters.republishForRetry(delivery);
        return { outcome, sent: await this.ack(delivery) };
      } catch (error) {
        if (error instanceof UnroutablePublishError) this.queues.queueMissing(error.queue);
        this.logger.warn({
          msg: `republishing for retry failed, requeueing instead: ${(error as Error).message}`,
          saleId: outcome.purchase?.saleId,
          userId: outcome.purchase?.userId,
          deliveryTag: delivery.message.fields.deliveryTag,
          messageId: safeProperty(delivery.message.properties.messageId),
        });
      }
    }
    return { outcome, sent: this.requeue(delivery) };
  }

  /**
   * Hands messages whose ack was queued to the replies once the ack frames are out: a reply never goes
   * before its ack. When the acks cannot be sent (the channel closed), there is no reply: the broker
   * redelivers the message, and its redelivery is replied to. Only batches with a reply pay for sending their
   * acks now instead of with the next turn's (a run behind a delivery still in progress goes one by one).
   */
  private reply(settled: readonly Settled<Delivery>[]): void {
    // The first delivery of a channel sends its queued acks; the others of that channel find none left.
    const acked = settled.filter(({ token }) => this.sent(token, 'ack', token.sendAcksNow()));
    if (acked.length > 0) this.replies.send(acked);
  }

  /** Acks one settled message, then replies to it when it asked; whether the ack reached the channel. */
  private ackAndReply(delivery: Delivery, outcome: Outcome): Promise<boolean> {
    const sent = this.ack(delivery);
    if (delivery.isLive && asksForReply(delivery.message.properties)) {
      this.reply([{ token: delivery, outcome }]);
    }
    return sent;
  }

  /** Queues the ack; resolves once it reached the channel (true) or was lost with it (false). */
  private ack(delivery: Delivery): Promise<boolean> {
    return new Promise((resolve) => {
      const receipt: AckReceipt = { acked: (_index, sent) => resolve(sent) };
      if (!this.sent(delivery, 'ack', delivery.ack(receipt))) resolve(false);
    });
  }

  private requeue(delivery: Delivery): boolean {
    return this.sent(delivery, 'requeue', delivery.requeue());
  }

  private sent(delivery: Delivery, action: string, sent: boolean): boolean {
    if (!sent) {
      this.logger.debug(
        `no ${action} for delivery ${delivery.message.fields.deliveryTag}: its channel is closed; the broker redelivers it`,
      );
    }
    return sent;
  }
}

/** The acks of a committed batch: reported together, then finished, once every one has gone or was lost. */
class CommittedAcks implements AckReceipt {
  private readonly reported: Reported[];
  private waiting: number;

  constructor(
    private readonly committed: readonly Settled<Delivery>[],
    private readonly reporter: OutcomeListener,
  ) {
    this.reported = new Array<Reported>(committed.length);
    this.waiting = committed.length;
  }

  acked(index: number, sent: boolean): void {
    const { token, outcome } = this.committed[index] as Settled<Delivery>;
    this.reported[index] = { outcome, facts: factsOf(token, sent) };
    if (--this.waiting > 0) return;
    try {
      this.reporter.report(this.reported);
    } finally {
      for (const settled of this.committed) settled.token.finish(settled.outcome.kind);
    }
  }
}

function factsOf(delivery: Delivery, sent: boolean): Reported['facts'] {
  return {
    messageId: safeProperty(delivery.message.properties.messageId),
    deliveryTag: delivery.message.fields.deliveryTag,
    deliveryCount: delivery.deliveryCount,
    settled: sent,
  };
}
