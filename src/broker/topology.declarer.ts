import { Logger } from '@nestjs/common';
import type { ChannelModel } from 'amqplib';
import { withScratchChannel } from './scratch-channel.js';
import type { QueueDeclaration } from './topology.js';

/** What the broker said about one queue of the topology at start-up or after a reconnect. */
export interface QueueFound {
  name: string;
  created: boolean;
  messageCount: number;
  consumerCount: number;
}

interface ChannelOwner {
  connection: ChannelModel | undefined;
}

/**
 * Applies the topology idempotently: each queue is checked passively first and declared only when missing.
 * An existing queue is used as it was declared, whatever its arguments (the flash-sale API's classic
 * `purchase_queue`), and is never declared again: declaring an existing queue needs the configure
 * permission, which a consumer of queues declared by someone else usually lacks (read and write only).
 * Checks run on scratch channels because a failed check closes the channel it ran on.
 */
export class TopologyDeclarer {
  private readonly logger = new Logger(TopologyDeclarer.name);

  async apply(owner: ChannelOwner, queues: readonly QueueDeclaration[]): Promise<QueueFound[]> {
    const found: QueueFound[] = [];
    for (const queue of queues) found.push(await this.applyOne(owner, queue));
    return found;
  }

  private async applyOne(owner: ChannelOwner, queue: QueueDeclaration): Promise<QueueFound> {
    const existing = await withScratchChannel(owner.connection, (channel) =>
      channel.checkQueue(queue.name),
    ).catch((error: { code?: number }) => {
      if (error.code === 404) return undefined;
      throw error;
    });
    if (existing) {
      this.logger.log(
        `using existing ${queue.role} queue ${queue.name} as it was declared ` +
          `(${existing.messageCount} messages, ${existing.consumerCount} consumers)`,
      );
      return {
        name: queue.name,
        created: false,
        messageCount: existing.messageCount,
        consumerCount: existing.consumerCount,
      };
    }
    const declared = await withScratchChannel(owner.connection, (channel) =>
      channel.assertQueue(queue.name, queue.options),
    );
    this.logger.log(
      `declared ${queue.role} queue ${queue.name} ${JSON.stringify(queue.options.arguments ?? {})}`,
    );
    return {
      name: queue.name,
      created: true,
      messageCount: declared.messageCount,
      consumerCount: declared.consumerCount,
    };
  }
}
