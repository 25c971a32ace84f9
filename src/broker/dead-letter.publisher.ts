import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Rejection } from '../purchases/purchase.schema.js';
import type { Delivery } from './delivery.js';
import { republishedProperties } from './message-properties.js';

/** The dead-letter publish was not confirmed; the message stays on its queue. */
export class DeadLetterPublishError extends Error {
  override readonly name = 'DeadLetterPublishError';
}

/**
 * Publishes a message that can never succeed to the dead-letter queue with publisher confirms, keeping its
 * body, properties and headers, and adding why and when: `x-rejection-reason` (a sentence), `x-rejection-code`,
 * `x-original-queue`, `x-first-seen`, `x-rejected-at-delivery`, `x-rejected-by`. (Not `x-delivery-count`:
 * quorum queues overwrite that header with their own count on every delivery.) The caller acks the original only
 * after the confirm, so a crash in between leaves a copy in both queues, never in neither.
 */
export class DeadLetterPublisher {
  constructor(
    private readonly publisher: ChannelWrapper,
    private readonly deadLetterQueue: string,
    private readonly sourceQueue: string,
    private readonly workerId: string,
  ) {}

  async publish(delivery: Delivery, rejection: Rejection): Promise<void> {
    const { properties, content } = delivery.message;
    const headers = properties.headers ?? {};
    try {
      await this.publisher.publish('', this.deadLetterQueue, content, {
        ...republishedProperties(properties),
        headers: {
          ...headers,
          'x-rejection-reason': rejection.reason,
          'x-rejection-code': rejection.code,
          'x-original-queue': (headers['x-original-queue'] as string | undefined) ?? this.sourceQueue,
          'x-first-seen': (headers['x-first-seen'] as string | undefined) ?? new Date().toISOString(),
          'x-rejected-at-delivery': delivery.deliveryCount,
          'x-rejected-by': this.workerId,
        },
      });
    } catch (cause) {
      throw new DeadLetterPublishError(
        `dead-lettering message ${String(properties.messageId ?? delivery.message.fields.deliveryTag)} to ` +
          `${this.deadLetterQueue} was not confirmed (${rejection.code}): ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  /** Classic queues count redeliveries themselves: the message goes back to the tail with the count + 1. */
  async republishForRetry(delivery: Delivery): Promise<void> {
    const { properties, content } = delivery.message;
    await this.publisher.publish('', this.sourceQueue, content, {
      ...republishedProperties(properties),
      headers: { ...(properties.headers ?? {}), 'x-retry-count': delivery.deliveryCount },
    });
  }
}
