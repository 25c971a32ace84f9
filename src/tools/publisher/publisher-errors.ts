/** Base of every error `PurchasePublisher` rejects with; `messageId` names the message when one was made. */
export class PurchasePublishError extends Error {
  override readonly name: string = 'PurchasePublishError';
  constructor(
    message: string,
    readonly queue: string,
    readonly messageId?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Too many publishes await a broker confirm (typically while the broker is unreachable): the publish is
 * refused instead of buffering without bound. The caller may retry later or fail its own request.
 */
export class PublisherBackpressureError extends PurchasePublishError {
  override readonly name = 'PublisherBackpressureError';
  constructor(
    queue: string,
    readonly pendingPublishes: number,
    readonly maxPendingPublishes: number,
  ) {
    super(
      `publish to "${queue}" refused: ${pendingPublishes} publishes await a broker confirm ` +
        `(maxPendingPublishes ${maxPendingPublishes})`,
      queue,
    );
  }
}

/** `publish` was called after `close()`. */
export class PublisherClosedError extends PurchasePublishError {
  override readonly name = 'PublisherClosedError';
  constructor(queue: string) {
    super(`publish to "${queue}" refused: the publisher is closed`, queue);
  }
}

/** Why the broker did not take responsibility for a message. */
export type NotConfirmedReason = 'nacked' | 'unroutable' | 'timeout' | 'channel-closed' | 'publisher-closed';

/**
 * The broker did not confirm the message: it refused it (`nacked`, e.g. a full queue with
 * `x-overflow: reject-publish`), no queue took it (`unroutable`), no confirm came in time (`timeout`), the
 * channel kept closing before the confirm came (`channel-closed`), or the publisher was closed first
 * (`publisher-closed`). Except for `nacked` and `unroutable` the message may be in the queue anyway;
 * republishing is safe, the worker absorbs a duplicate purchase.
 */
export class PublishNotConfirmedError extends PurchasePublishError {
  override readonly name = 'PublishNotConfirmedError';
  constructor(
    queue: string,
    messageId: string,
    readonly reason: NotConfirmedReason,
    options?: ErrorOptions,
  ) {
    super(
      `message ${messageId} to "${queue}" not confirmed by the broker: ${reason}`,
      queue,
      messageId,
      options,
    );
  }
}

/** The purchase breaks the message contract; publishing it would only feed the dead-letter queue. */
export class InvalidPurchaseError extends PurchasePublishError {
  override readonly name = 'InvalidPurchaseError';
  constructor(
    queue: string,
    readonly problems: string[],
  ) {
    super(`purchase for "${queue}" is invalid: ${problems.join('; ')}`, queue);
  }
}
