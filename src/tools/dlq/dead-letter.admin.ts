import { safeProperty } from '../../common/safe-text.js';
import amqp, {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type GetMessage,
  type Options,
} from 'amqplib';
import { redactCredentials } from '../../common/log-redaction.js';
import { sleep } from '../../common/backoff.js';
import { withScratchChannel } from '../../broker/scratch-channel.js';
import {
  bodyPreview,
  rejectedAtDeliveryOf,
  firstSeenOf,
  rejectionOf,
  replayProperties,
} from './dead-letter.inspection.js';

/** The queue pair the tool works on: the DLQ and the purchase queue that replays go back to. */
export interface DeadLetterQueues {
  purchaseQueue: string;
  deadLetterQueue: string;
}

export interface ReasonCount {
  reason: string;
  code: string | undefined;
  count: number;
}

export interface DeadLetterSample {
  firstSeen: string | undefined;
  deliveryCount: number | undefined;
  messageId: string | undefined;
  reason: string;
  bytes: number;
  preview: string;
}

export interface DeadLetterListing {
  queue: string;
  /** Messages ready in the DLQ when the listing began. */
  messageCount: number;
  /** Messages looked at (at most `maxMessages`). */
  inspected: number;
  /** Most frequent first. */
  reasons: ReasonCount[];
  samples: DeadLetterSample[];
}

export interface ListOptions {
  maxMessages?: number;
  sampleCount?: number;
  previewCharacters?: number;
}

export interface ReplayResult {
  from: string;
  to: string;
  /** Messages the run meant to replay: `limit`, or all those in the DLQ when it began. */
  target: number;
  replayed: number;
  /** Messages in the DLQ after the run. */
  remaining: number;
}

export interface ReplayOptions {
  limit?: number;
  onProgress?: (replayed: number, target: number) => void;
}

/** A queue the tool needs does not exist on the broker. */
export class QueueNotFoundError extends Error {
  override readonly name = 'QueueNotFoundError';
  constructor(
    readonly queue: string,
    options?: ErrorOptions,
  ) {
    super(`queue "${queue}" does not exist`, options);
  }
}

export class BrokerUnreachableError extends Error {
  override readonly name = 'BrokerUnreachableError';
}

/** A replay stopped on an unconfirmed or unroutable publish; the message in hand stayed in the DLQ. */
export class ReplayError extends Error {
  override readonly name = 'ReplayError';
  constructor(
    message: string,
    readonly replayed: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** How long `list` waits, at most, for the messages it looked at to be back in the queue, and how often it looks. */
const RETURN_WAIT_MS = 5_000;
const RETURN_POLL_MS = 25;

/**
 * The operator's view of the dead-letter queue: list what is there and why without taking it off, replay
 * messages to the purchase queue, purge. Every message taken off the DLQ is acked only after its copy is
 * confirmed by the broker, so a failure leaves it in the DLQ (or, at worst, in both queues; a second copy of a
 * purchase is a duplicate, which the worker acks without a second order).
 */
export class DeadLetterAdmin {
  private constructor(
    private readonly connection: ChannelModel,
    readonly queues: DeadLetterQueues,
  ) {}

  static async connect(rabbitUrl: string, queues: DeadLetterQueues): Promise<DeadLetterAdmin> {
    let connection: ChannelModel;
    try {
      connection = await amqp.connect(rabbitUrl, {
        clientProperties: { connection_name: 'flashsale dlq tool' },
      });
    } catch (cause) {
      throw new BrokerUnreachableError(
        `cannot connect to ${redactCredentials(rabbitUrl)}: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
    // A connection error also rejects the operation in progress, which reports it; the event needs no more.
    connection.on('error', () => undefined);
    return new DeadLetterAdmin(connection, queues);
  }

  /** Ready messages in `queue`; throws QueueNotFoundError if it does not exist. */
  async depth(queue: string): Promise<number> {
    // On a channel of its own: a check of a missing queue closes the channel it runs on.
    return this.withChannel(async (channel) => {
      try {
        return (await channel.checkQueue(queue)).messageCount;
      } catch (cause) {
        if ((cause as { code?: number }).code === 404) throw new QueueNotFoundError(queue, { cause });
        throw cause;
      }
    });
  }

  /**
   * Counts the DLQ's messages per reason and keeps a few samples, without consuming anything: messages are
   * taken unacked and all return to the queue when the channel closes. (A close, not a nack: on RabbitMQ 4
   * a nack with requeue would count toward a quorum queue's delivery limit; a return on close does not.)
   */
  async list({
    maxMessages = 10_000,
    sampleCount = 5,
    previewCharacters = 60,
  }: ListOptions = {}): Promise<DeadLetterListing> {
    const queue = this.queues.deadLetterQueue;
    const messageCount = await this.depth(queue);
    const reasons = new Map<string, ReasonCount>();
    // One sample of each reason first, then the next messages in queue order.
    const firstOfReason: DeadLetterSample[] = [];
    const others: DeadLetterSample[] = [];
    let inspected = 0;
    await this.withChannel(async (channel) => {
      while (inspected < maxMessages) {
        const message = await channel.get(queue, { noAck: false });
        if (!message) return;
        inspected++;
        const { reason, code } = rejectionOf(message);
        const counted = reasons.get(reason);
        if (counted) counted.count++;
        else reasons.set(reason, { reason, code, count: 1 });
        const samples = counted ? others : firstOfReason;
        if (samples.length < sampleCount) samples.push(sampleOf(message, reason, previewCharacters));
      }
    });
    // The broker puts back what the closed channel held while it cleans the channel up, after the close itself
    // (a quorum queue through its log): wait for that, so that a `replay` or a depth read right after this
    // listing finds every message where it was.
    if (inspected > 0) await this.untilDepthAtLeast(queue, messageCount);
    const byCount = [...reasons.values()].sort(
      (a, b) => b.count - a.count || a.reason.localeCompare(b.reason),
    );
    const samples = [...firstOfReason, ...others].slice(0, sampleCount);
    return { queue, messageCount, inspected, reasons: byCount, samples };
  }

  /**
   * Moves messages from the DLQ to the purchase queue, one at a time: publish (persistent, mandatory, with its
   * original properties and the replay headers), wait for the broker's confirm, then ack the DLQ copy.
   * Takes at most the number in the DLQ when it starts: messages that workers dead-letter again meanwhile go to
   * the tail of the DLQ and wait there instead of going round in a loop.
   */
  async replay({ limit = Number.POSITIVE_INFINITY, onProgress }: ReplayOptions = {}): Promise<ReplayResult> {
    const { deadLetterQueue: from, purchaseQueue: to } = this.queues;
    const target = Math.min(limit, await this.depth(from));
    await this.depth(to); // publishing to a queue that does not exist would only be noticed as a return
    const replayedAt = new Date().toISOString();
    let replayed = 0;
    await this.withConfirmChannel(async (channel, publish) => {
      while (replayed < target) {
        const message = await channel.get(from, { noAck: false });
        if (!message) return;
        try {
          await publish(to, message.content, replayProperties(message.properties, replayedAt));
        } catch (cause) {
          throw new ReplayError(
            `replaying ${describe(message)} to ${to} failed after ${replayed} replayed: ${(cause as Error).message}`,
            replayed,
            { cause },
          );
        }
        channel.ack(message);
        replayed++;
        onProgress?.(replayed, target);
      }
    });
    return { from, to, target, replayed, remaining: await this.depth(from) };
  }

  /** Discards every message in the DLQ; returns how many there were. */
  async purge(): Promise<number> {
    await this.depth(this.queues.deadLetterQueue);
    return this.withChannel(
      async (channel) => (await channel.purgeQueue(this.queues.deadLetterQueue)).messageCount,
    );
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  /** Waits until `queue` holds `count` ready messages, or RETURN_WAIT_MS (another client may have taken some). */
  private async untilDepthAtLeast(queue: string, count: number): Promise<void> {
    const deadline = Date.now() + RETURN_WAIT_MS;
    while ((await this.depth(queue)) < count && Date.now() < deadline) await sleep(RETURN_POLL_MS);
  }

  /** Runs `work` on a fresh channel, then closes it: what it took unacked goes back to its queue. */
  private withChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
    return withScratchChannel(this.connection, work);
  }

  private async withConfirmChannel<T>(
    work: (channel: ConfirmChannel, publish: ConfirmedPublish) => Promise<T>,
  ): Promise<T> {
    const channel = await this.connection.createConfirmChannel();
    const closed = watchClose(channel);
    let returned = false;
    // The broker sends basic.return before the confirm of the same publish; one publish is in flight at a time.
    channel.on('return', () => (returned = true));
    const publish: ConfirmedPublish = (queue, content, options) =>
      new Promise((resolve, reject) => {
        returned = false;
        channel.sendToQueue(queue, content, { ...options, mandatory: true }, (error: unknown) => {
          if (error) reject(error instanceof Error ? error : new Error('not confirmed by the broker'));
          else if (returned) reject(new Error(`returned by the broker: no queue "${queue}" to route to`));
          else resolve();
        });
      });
    try {
      return await work(channel, publish);
    } finally {
      // Not a scratch channel (broker/scratch-channel.ts swallows a failed close): a replay's acks ride on this
      // channel, and a close that fails may have lost them, which the operator must hear of.
      if (!closed()) await channel.close();
    }
  }
}

/**
 * Tells whether the broker or a lost connection has closed `channel`. Such a close also emits `error`; the
 * operation it interrupted rejects with the same error and reports it, so the event needs no other handling.
 */
function watchClose(channel: Channel): () => boolean {
  let closed = false;
  channel.on('error', () => (closed = true));
  channel.on('close', () => (closed = true));
  return () => closed;
}

type ConfirmedPublish = (queue: string, content: Buffer, options: Options.Publish) => Promise<void>;

function describe(message: GetMessage): string {
  const messageId = safeProperty(message.properties.messageId, 64);
  return messageId ? `message ${messageId}` : `a message of ${message.content.length} bytes`;
}

function sampleOf(message: GetMessage, reason: string, previewCharacters: number): DeadLetterSample {
  return {
    firstSeen: firstSeenOf(message)?.toISOString(),
    deliveryCount: rejectedAtDeliveryOf(message),
    messageId: message.properties.messageId as string | undefined,
    reason,
    bytes: message.content.length,
    preview: bodyPreview(message.content, previewCharacters),
  };
}
