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

/**
 * The worker answered a `request` with a rejection: the purchase was dead-lettered and will never be an order.
 * `code` is the worker's stable rejection code (a `RejectionCode`), `reason` the sentence that says why.
 */
export class PurchaseRejectedError extends PurchasePublishError {
  override readonly name = 'PurchaseRejectedError';
  constructor(
    queue: string,
    messageId: string,
    readonly code: string,
    readonly reason: string,
  ) {
    super(
      `purchase ${messageId} to "${queue}" rejected by the worker (${code}): ${reason}`,
      queue,
      messageId,
    );
  }
}

/**
 * No reply to a `request` came within its timeout (confirm included). The purchase may be in the queue and
 * its order may still come; asking again is safe, the worker absorbs a duplicate purchase.
 */
export class PurchaseReplyTimeoutError extends PurchasePublishError {
  override readonly name = 'PurchaseReplyTimeoutError';
  constructor(
    queue: string,
    messageId: string,
    readonly correlationId: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply to purchase ${messageId} from "${queue}" within ${timeoutMs} ms`, queue, messageId);
  }
}

/** The reply to a `request` is not one the worker writes (not JSON, an unknown status, a field missing). */
export class InvalidReplyError extends PurchasePublishError {
  override readonly name = 'InvalidReplyError';
  constructor(
    queue: string,
    messageId: string,
    readonly problem: string,
  ) {
    super(`the reply to purchase ${messageId} from "${queue}" is unreadable: ${problem}`, queue, messageId);
  }
}
