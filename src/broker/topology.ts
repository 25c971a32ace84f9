import type { Options } from 'amqplib';
import type { Settings } from '../config/settings.js';

/** One queue of the topology: its name and the arguments it is declared with when missing. */
export interface QueueDeclaration {
  name: string;
  role: 'purchases' | 'dead-letters';
  options: Options.AssertQueue;
}

/**
 * The broker topology as data: the purchase queue dead-letters to the DLQ through the default exchange.
 * Quorum (default): the broker itself dead-letters a message after `MAX_DELIVERIES` deliveries
 * (`x-delivery-limit`), at-least-once (`x-dead-letter-strategy`, which needs `x-overflow: reject-publish`),
 * so a message that keeps killing workers cannot loop forever nor be dropped silently.
 * On a cluster, a quorum queue's leader goes to the node with the fewest leaders (`x-queue-leader-locator:
 * balanced`) rather than to whichever node the declaring worker happens to be connected to, so the purchase
 * queue and its DLQ do not pile onto one node, and losing one node costs at most the leaders it held.
 * Classic: the arguments of the flash-sale API's own `purchase_queue`, for drop-in use beside it (an extra
 * argument would make the API's own declaration fail with PRECONDITION_FAILED).
 */
export function purchaseTopology(settings: Settings): QueueDeclaration[] {
  const deadLettering = {
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': settings.DEAD_LETTER_QUEUE,
  };
  const purchases: QueueDeclaration =
    settings.QUEUE_TYPE === 'quorum'
      ? {
          name: settings.PURCHASE_QUEUE,
          role: 'purchases',
          options: {
            durable: true,
            arguments: {
              'x-queue-type': 'quorum',
              ...deadLettering,
              'x-dead-letter-strategy': 'at-least-once',
              'x-overflow': 'reject-publish',
              'x-delivery-limit': settings.MAX_DELIVERIES,
              'x-queue-leader-locator': 'balanced',
            },
          },
        }
      : {
          name: settings.PURCHASE_QUEUE,
          role: 'purchases',
          options: { durable: true, arguments: deadLettering },
        };
  const deadLetters: QueueDeclaration = {
    name: settings.DEAD_LETTER_QUEUE,
    role: 'dead-letters',
    options: {
      durable: true,
      arguments:
        settings.QUEUE_TYPE === 'quorum'
          ? { 'x-queue-type': 'quorum', 'x-queue-leader-locator': 'balanced' }
          : {},
    },
  };
  return [deadLetters, purchases];
}
