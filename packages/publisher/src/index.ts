/** @flashsale/publisher: publishes purchases to the flashsale-worker fleet (the NestJS module: `@flashsale/publisher/nest`). */
export { PurchasePublisher } from './purchase-publisher.js';
export type {
  PublisherConnectionEvent,
  PublisherState,
  PublishOptions,
  PurchasePublisherOptions,
} from './publisher-options.js';
export { DIRECT_REPLY_TO, type PurchaseOutcome } from './purchase-replies.js';
export {
  InvalidPurchaseError,
  InvalidReplyError,
  type NotConfirmedReason,
  PublisherBackpressureError,
  PublisherClosedError,
  PublishNotConfirmedError,
  PurchasePublishError,
  PurchaseRejectedError,
  PurchaseReplyTimeoutError,
} from './publisher-errors.js';
export { type EncodedPurchase, encodePurchase, type PurchaseInput } from '@flashsale/contract';
