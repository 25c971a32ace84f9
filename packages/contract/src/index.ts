/** @flashsale/contract: the purchase message of the flashsale-worker fleet, as its publishers and the worker read it. */
export {
  DEAD_LETTER_QUEUE_SUFFIX,
  deadLetterQueueOf,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_PURCHASE_PATTERN,
  DEFAULT_PURCHASE_QUEUE,
  PURCHASE_CONTENT_TYPE,
  REJECTION_CODE_HEADER,
  REJECTION_REASON_HEADER,
} from './names.js';
export { type Purchase, purchaseSchema, USER_ID_MAX_CHARACTERS, validPurchase } from './purchase.schema.js';
export {
  type DecodeOptions,
  type DecodeResult,
  decodePurchase,
  type NestEnvelope,
  type Rejection,
  type RejectionCode,
} from './purchase.decode.js';
export { type EncodedPurchase, encodePurchase, type PurchaseInput } from './purchase.encode.js';
export { cutToCodePoints, MAX_COPIED_CODE_POINTS, REPLACEMENT, safeText } from './safe-text.js';
