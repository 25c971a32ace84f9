import { Logger } from '@nestjs/common';
import type { Context } from '@opentelemetry/api';
import { inChildSpanSync } from '../observability/tracing.js';
import {
  isCommitted,
  type Outcome,
  type OutcomeListener,
  type Reported,
  type Settled,
} from '../purchases/outcome.js';
import { type DeadLetterPublisher, UnroutablePublishError } from './dead-letter.publisher.js';
import type { Delivery } from './delivery.js';
import { backoffDelayMs, sleep } from '../common/backoff.js';
import { ShutdownInterruptedError } from '../common/shutdown-signal.js';
import { safeProperty } from '../common/safe-text.js';
import { asksForReply } from './reply.message.js';

export interface SettlerOptions {
  queueType: 'quorum' | 'classic';
  maxDeliveries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Told when a publish came back unroutable (its queue is missing), and when a dead letter got through. */
  onUnroutable?: (error: UnroutablePublishError) => void;
  onDeadLettered?: () => void;
  /** The worker's shutdown: every back-off ends at once and its message is left unacked. */
  signal?: AbortSignal;
  /** Told how many deliveries are finished (settled, or given up on) after each step. */
  onFinished?: (count: number) => void;
  /**
   * Given the settled messages that asked for a reply (`replyTo`), once their ack is sent: confirmed and
   * duplicate after the ack of their committed order, rejected after the dead-letter confirm and the ack.
   */
  onReplyWanted?: (settled: readonly Settled<Delivery>[]) => void;
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
 * An ack or nack is only sent on the channel that delivered the message and only while it is open: a
 * delivery tag from a dead channel means nothing to the broker, which redelivers the message anyway.
 */
export class MessageSettler {
  private readonly logger = new Logger(MessageSettler.name);

  constructor(
    private readonly deadLetters: DeadLetterPublisher,
    private readonly reporter: OutcomeListener,
    private readonly options: SettlerOptions,
  ) {}

  /**
   * Settles a batch of outcomes from the pipeline: the committed ones are acked and reported together at
   * once (under the batch's `ack` span while tracing is on), the others one by one, each when the broker has
   * answered or its back-off is over.
   */
  settleBatch(settled: readonly Settled<Delivery>[], trace?: Context): void {
    const committed = settled.filter(({ outcome }) => isCommitted(outcome));
    if (committed.length > 0) {
      inChildSpanSync(trace, 'ack', () => this.settleCommitted(committed));
      for (const { token } of committed) token.span?.end();
      this.options.onFinished?.(committed.length);
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
        .finally(() => {
          delivery.span?.setAttribute('flashsale.outcome', outcome.kind);
          delivery.span?.end();
          this.options.onFinished?.(1);
        });
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

  /** Acks a batch of committed purchases (confirmed or duplicate) and reports them together. */
  settleCommitted(committed: readonly Settled<Delivery>[]): void {
    const reported: Reported[] = new Array<Reported>(committed.length);
    let replies: Settled<Delivery>[] | undefined;
    for (let index = 0; index < committed.length; index++) {
      const settled = committed[index] as Settled<Delivery>;
      const sent = this.ack(settled.token);
      reported[index] = { outcome: settled.outcome, facts: factsOf(settled.token, sent) };
      if (sent && asksForReply(settled.token.message.properties)) (replies ??= []).push(settled);
    }
    this.reporter.report(reported);
    if (replies) this.reply(replies);
  }

  /** The final outcome, and whether its ack, requeue or republish reached the channel. */
  private async apply(delivery: Delivery, outcome: Outcome): Promise<{ outcome: Outcome; sent: boolean }> {
    switch (outcome.kind) {
      case 'confirmed':
      case 'duplicate':
        return { outcome, sent: this.ackAndReply(delivery, outcome) };
      case 'rejected':
        try {
          await this.deadLetters.publish(delivery, outcome.rejection);
        } catch (error) {
          if (error instanceof UnroutablePublishError) this.options.onUnroutable?.(error);
          const retry: Extract<Outcome, { kind: 'retry' }> = { kind: 'retry', error: error as Error };
          if (outcome.purchase) retry.purchase = outcome.purchase;
          return this.backOffAndRequeue(delivery, retry);
        }
        this.options.onDeadLettered?.();
        return { outcome, sent: this.ackAndReply(delivery, outcome) };
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
        return { outcome, sent: this.ack(delivery) };
      } catch (error) {
        if (error instanceof UnroutablePublishError) this.options.onUnroutable?.(error);
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
    const { onReplyWanted } = this.options;
    if (!onReplyWanted) return;
    const acked: Settled<Delivery>[] = [];
    const flushed = new Map<Delivery['live'], boolean>();
    for (const entry of settled) {
      const { live } = entry.token;
      let sent = flushed.get(live);
      if (sent === undefined) {
        sent = this.onLiveChannel(entry.token, 'ack', () => live.acks.flush());
        flushed.set(live, sent);
      }
      if (sent) acked.push(entry);
    }
    if (acked.length > 0) onReplyWanted(acked);
  }

  /** Acks one settled message, then replies to it when it asked; whether the ack reached the channel. */
  private ackAndReply(delivery: Delivery, outcome: Outcome): boolean {
    const sent = this.ack(delivery);
    if (sent && asksForReply(delivery.message.properties)) this.reply([{ token: delivery, outcome }]);
    return sent;
  }

  private ack(delivery: Delivery): boolean {
    return this.onLiveChannel(delivery, 'ack', () => delivery.live.acks.ack(delivery.message));
  }

  private requeue(delivery: Delivery): boolean {
    return this.onLiveChannel(delivery, 'requeue', () => {
      delivery.live.channel.nack(delivery.message, false, true);
      delivery.live.acks.settled(delivery.message.fields.deliveryTag);
    });
  }

  private onLiveChannel(delivery: Delivery, action: string, send: () => void): boolean {
    if (delivery.live.open) {
      try {
        send();
        return true;
      } catch (error) {
        // The channel closed between the check and the send (amqplib throws "Channel closed").
        delivery.live.open = false;
        this.logger.debug(`${action} failed: ${(error as Error).message}`);
      }
    }
    this.logger.debug(
      `no ${action} for delivery ${delivery.message.fields.deliveryTag}: its channel is closed; the broker redelivers it`,
    );
    return false;
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
