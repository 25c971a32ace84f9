/**
 * The names publishers, the worker and operators share (docs/contract.md): keep them exactly. The worker's
 * settings default to them; a deployment may name other queues and another pattern.
 */

/** Queue the purchases go to, through the default exchange (routing key = queue name): PURCHASE_QUEUE. */
export const DEFAULT_PURCHASE_QUEUE = 'purchase';

/** The dead-letter queue of a purchase queue is `<queue>` + this, unless DEAD_LETTER_QUEUE names another. */
export const DEAD_LETTER_QUEUE_SUFFIX = '.dlq';

/** Header of a dead-lettered message: the sentence that says what was wrong with it. */
export const REJECTION_REASON_HEADER = 'x-rejection-reason';

/** Header of a dead-lettered message: the stable code of its rejection (a `RejectionCode`). */
export const REJECTION_CODE_HEADER = 'x-rejection-code';

/** The pattern a NestJS client names a purchase with (`client.emit('purchase', …)`): PURCHASE_PATTERN. */
export const DEFAULT_PURCHASE_PATTERN = 'purchase';

/** Largest purchase body the worker accepts by default, in bytes: MAX_MESSAGE_BYTES. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024;

/** Content type of a purchase body. */
export const PURCHASE_CONTENT_TYPE = 'application/json';

/** The dead-letter queue of `queue` when none is named. */
export function deadLetterQueueOf(queue: string): string {
  return `${queue}${DEAD_LETTER_QUEUE_SUFFIX}`;
}
