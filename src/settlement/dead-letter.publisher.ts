import type { Message, Options } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { safeProperty, safeText } from '../common/safe-text.js';
import type { Rejection } from '../purchases/outcome.js';
import type { Delivery } from '../consumer/delivery.js';
import { republishedProperties } from '../broker/message-properties.js';

/** Names each publish, so a message the broker returns is matched to the publish it belongs to. */
const PUBLISH_ID_HEADER = 'x-publish-id';

/** Publishes with a broker confirm: resolves once confirmed, rejects when refused or not confirmed in time. */
export interface ConfirmedPublisher {
  publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<unknown>;
}

/** The publish was not confirmed; the message stays on its queue. */
export class DeadLetterPublishError extends Error {
  override readonly name: string = 'DeadLetterPublishError';
}

/**
 * The broker confirmed the publish but routed it nowhere: the target queue does not exist (deleted by an
 * operator, or never declared). The message stays on its queue.
 */
export class UnroutablePublishError extends DeadLetterPublishError {
  override readonly name: string = 'UnroutablePublishError';
  constructor(
    readonly queue: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Publishes a message that can never succeed to the dead-letter queue with publisher confirms, keeping its
 * body, properties and headers, and adding why and when: `x-rejection-reason` (a sentence), `x-rejection-code`,
 * `x-original-queue`, `x-first-seen`, `x-rejected-at-delivery`, `x-rejected-by`. (Not `x-delivery-count`:
 * quorum queues overwrite that header with their own count on every delivery.) The caller acks the original only
 * after the confirm, so a crash in between leaves a copy in both queues, never in neither.
 * Every publish is `mandatory`: RabbitMQ confirms a message it could not route, so only the `basic.return`
 * that comes before the confirm tells that the queue is gone; such a publish fails with UnroutablePublishError.
 */
export class DeadLetterPublisher {
  private readonly returned = new Set<string>();

  constructor(
    private readonly publisher: ConfirmedPublisher,
    private readonly deadLetterQueue: string,
    private readonly sourceQueue: string,
    private readonly workerId: string,
  ) {}

  /** To be called with every message the publisher channel's broker returns (its `return` event). */
  onReturned(message: Message): void {
    const headers: Record<string, unknown> = message.properties.headers ?? {};
    const id = headers[PUBLISH_ID_HEADER];
    if (typeof id === 'string') this.returned.add(id);
  }

  async publish(delivery: Delivery, rejection: Rejection): Promise<void> {
    const { properties, content } = delivery.message;
    const headers = properties.headers ?? {};
    const what = `dead-lettering message ${describe(delivery)} to ${this.deadLetterQueue} (${rejection.code})`;
    await this.publishMandatory(this.deadLetterQueue, content, what, republishedProperties(properties), {
      ...headers,
      'x-rejection-reason': safeText(rejection.reason),
      'x-rejection-code': rejection.code,
      'x-original-queue': (headers['x-original-queue'] as string | undefined) ?? this.sourceQueue,
      'x-first-seen': (headers['x-first-seen'] as string | undefined) ?? new Date().toISOString(),
      'x-rejected-at-delivery': delivery.deliveryCount,
      'x-rejected-by': this.workerId,
    });
  }

  /** Classic queues count redeliveries themselves: the message goes back to the tail with the count + 1. */
  async republishForRetry(delivery: Delivery): Promise<void> {
    const { properties, content } = delivery.message;
    await this.publishMandatory(
      this.sourceQueue,
      content,
      `republishing message ${describe(delivery)} to ${this.sourceQueue} for retry`,
      republishedProperties(properties),
      { ...(properties.headers ?? {}), 'x-retry-count': delivery.deliveryCount },
    );
  }

  private async publishMandatory(
    queue: string,
    content: Buffer,
    what: string,
    properties: Options.Publish,
    headers: Record<string, unknown>,
  ): Promise<void> {
    const id = randomUUID();
    try {
      await this.publisher.publish('', queue, content, {
        ...properties,
        headers: { ...headers, [PUBLISH_ID_HEADER]: id },
        mandatory: true,
      });
    } catch (cause) {
      this.returned.delete(id);
      throw new DeadLetterPublishError(`${what} was not confirmed: ${(cause as Error).message}`, { cause });
    }
    // The broker sends basic.return before the confirm of the same message: by now it has been seen.
    if (this.returned.delete(id)) {
      throw new UnroutablePublishError(queue, `${what}: returned unroutable, queue ${queue} does not exist`);
    }
  }
}

/** The message id (made safe) or the delivery tag, for error messages. */
function describe(delivery: Delivery): string {
  return (
    safeProperty(delivery.message.properties.messageId, 100) ?? `#${delivery.message.fields.deliveryTag}`
  );
}
