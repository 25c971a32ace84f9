import { Logger } from '@nestjs/common';
import type { Channel, Message } from 'amqplib';
import { safeProperty } from '../common/safe-text.js';
import type { Settings } from '../config/settings.js';
import { settledBy } from '../common/waiting.js';
import { WarningAllowance } from '../common/warning-allowance.js';
import type { ReplyResult } from '../observability/worker-metrics.js';
import { isCommitted, type Outcome, type Settled } from '../purchases/outcome.js';
import type { Delivery } from '../consumer/delivery.js';
import type { CommittedOrder, OrderLookup } from './reply-order.lookup.js';
import {
  nestRequestOf,
  type ReplyAddress,
  replyAddressOf,
  replyBodyOf,
  replyContent,
} from './reply.message.js';

/** How often, at most, warn lines about single replies are logged (as the outcome reporter's). */
const WARNING_INTERVAL_MS = 10_000;

/** The outcomes that get a reply; a `retry` gets none: its message comes back. */
type RepliedOutcome = Extract<Outcome, { kind: 'confirmed' | 'duplicate' | 'rejected' }>;

/** A settled message that asked for a reply, with its address. */
interface Request {
  delivery: Delivery;
  outcome: RepliedOutcome;
  address: ReplyAddress;
}

/** The reply publisher's options from the settings: the one mapping. */
export function replyPublisherOptions(
  settings: Pick<Settings, 'MAX_MESSAGE_BYTES' | 'MESSAGE_WARNINGS_PER_10S'>,
): ReplyPublisherOptions {
  return {
    maxMessageBytes: settings.MAX_MESSAGE_BYTES,
    warningsPerInterval: settings.MESSAGE_WARNINGS_PER_10S,
  };
}

export interface ReplyPublisherOptions {
  /** The purchase decoder's body limit: a longer body is not parsed again to tell a Nest envelope. */
  maxMessageBytes: number;
  /** Most warn lines about single replies per 10 s (MESSAGE_WARNINGS_PER_10S); 0: no limit. */
  warningsPerInterval: number;
  warningIntervalMs?: number;
}

/**
 * Replies to settled messages that carry `replyTo` and `correlationId` (NestJS's `client.send()`, any AMQP
 * RPC client), once each: after the ack of a committed order, or after the dead-letter copy was confirmed and
 * the original acked. A reply is published to the default exchange with `replyTo` as routing key (direct
 * reply-to, `amq.rabbitmq.reply-to.…`, included), on a channel of its own, and never holds up an ack: a
 * reply that cannot be sent is counted (`flashsale_replies_total{result="failed"}`) and logged.
 * No publisher confirms: a reply is at most once whatever the worker does (direct reply-to drops it when
 * the requester has gone; a lost reply is not sent again, the requester asks again and is told `duplicate`),
 * so waiting for a confirm would cost a round trip and buy nothing. Publishes are `mandatory`, so that a
 * `replyTo` naming no queue comes back and is counted `returned` (a direct reply-to name counts as routed).
 */
export class ReplyPublisher {
  private readonly logger = new Logger(ReplyPublisher.name);
  private channel: Promise<Channel> | undefined;
  private readonly pending = new Set<Promise<void>>();
  private closed = false;
  private readonly warningIntervalMs: number;
  private intervalStartedAt = 0;
  private readonly warnings: WarningAllowance;

  constructor(
    private readonly channels: { openChannel(): Promise<Channel> },
    private readonly orders: OrderLookup,
    private readonly metrics: { replied(result: ReplyResult, count?: number): void },
    private readonly options: ReplyPublisherOptions,
  ) {
    this.warningIntervalMs = options.warningIntervalMs ?? WARNING_INTERVAL_MS;
    this.warnings = new WarningAllowance(options.warningsPerInterval);
  }

  /** Replies to messages just settled (acked) that asked for a reply; returns at once and never throws. */
  send(settled: readonly Settled<Delivery>[]): void {
    if (this.closed) {
      this.failed(settled.length, 'the worker is shutting down', settled[0]?.token);
      return;
    }
    const work = this.replyAll(settled)
      .catch((error: Error) => this.failed(settled.length, `replying failed: ${error.message}`))
      .finally(() => this.pending.delete(work));
    this.pending.add(work);
  }

  /** Waits (until `deadline`, epoch ms) for the replies under way, then closes the reply channel. Once. */
  async close(deadline: number): Promise<void> {
    this.closed = true;
    await settledBy(Promise.allSettled([...this.pending]), deadline);
    const channel = this.channel;
    this.channel = undefined;
    if (channel) {
      await channel
        .then((open) => open.close())
        .catch((error: Error) => this.logger.debug(`closing the reply channel: ${error.message}`));
    }
    this.logNotLogged();
  }

  private async replyAll(settled: readonly Settled<Delivery>[]): Promise<void> {
    const requests: Request[] = [];
    for (const { token: delivery, outcome } of settled) {
      if (outcome.kind === 'retry') continue;
      const address = replyAddressOf(delivery.message.properties);
      if (address.ok) requests.push({ delivery, outcome, address: address.address });
      else this.failed(1, `no reply: ${address.problem}`, delivery);
    }
    if (requests.length === 0) return;
    const orders = await this.ordersOf(requests);
    let channel: Channel;
    try {
      channel = await this.openChannel();
    } catch (error) {
      this.failed(requests.length, `no reply: no channel to send it on: ${(error as Error).message}`);
      return;
    }
    requests.forEach((request, index) => {
      if (isCommitted(request.outcome) && !orders[index]) return; // counted by ordersOf
      this.publish(channel, request, orders[index]);
    });
  }

  /** The order of each committed request, by position, in one query; a request without one is counted failed. */
  private async ordersOf(requests: readonly Request[]): Promise<(CommittedOrder | undefined)[]> {
    const positions: number[] = [];
    requests.forEach((request, index) => isCommitted(request.outcome) && positions.push(index));
    const orders = new Array<CommittedOrder | undefined>(requests.length).fill(undefined);
    if (positions.length === 0) return orders;
    let found: (CommittedOrder | undefined)[];
    try {
      found = await this.orders.find(
        positions.map(
          (index) => (requests[index]?.outcome as Extract<Outcome, { kind: 'confirmed' }>).purchase,
        ),
      );
    } catch (error) {
      this.failed(positions.length, `no reply: looking up the orders failed: ${(error as Error).message}`);
      return orders;
    }
    positions.forEach((position, index) => {
      const order = found[index];
      if (order) orders[position] = order;
      else this.failed(1, 'no reply: its committed order was not found', requests[position]?.delivery);
    });
    return orders;
  }

  private publish(channel: Channel, request: Request, order: CommittedOrder | undefined): void {
    const { delivery, outcome, address } = request;
    try {
      const nest = nestRequestOf(delivery.message.content, this.options.maxMessageBytes);
      channel.publish('', address.replyTo, replyContent(replyBodyOf(outcome, order), nest), {
        correlationId: address.correlationId,
        contentType: 'application/json',
        mandatory: true,
      });
      this.metrics.replied('sent');
    } catch (error) {
      // amqplib throws when the channel has closed, or when a property cannot be encoded.
      this.failed(1, `no reply: publishing it failed: ${(error as Error).message}`, delivery);
    }
  }

  /** The reply channel, opened on first use and again after the broker or a reconnect closed it. */
  private openChannel(): Promise<Channel> {
    if (this.channel) return this.channel;
    const opening = this.channels.openChannel().then((channel) => {
      channel.on('return', (message: Message) => this.returned(message));
      // A refused publish (ACCESS_REFUSED on a queue the worker may not write to) closes the channel with an
      // error: without a listener it would be thrown on the connection and take the consumer with it.
      channel.on('error', (error: Error) => this.warn({ msg: `reply channel closed: ${error.message}` }));
      channel.on('close', () => {
        if (this.channel === opening) this.channel = undefined;
      });
      return channel;
    });
    opening.catch(() => {
      if (this.channel === opening) this.channel = undefined;
    });
    this.channel = opening;
    return opening;
  }

  private returned(message: Message): void {
    this.metrics.replied('returned');
    this.warn({
      msg: `reply returned unroutable: no queue ${safeProperty(message.fields.routingKey, 100) ?? ''}`,
      correlationId: safeProperty(message.properties.correlationId, 100),
    });
  }

  private failed(count: number, why: string, delivery?: Delivery): void {
    if (count === 0) return;
    this.metrics.replied('failed', count);
    this.warn({
      msg: count === 1 ? why : `${count} replies: ${why}`,
      deliveryTag: delivery?.message.fields.deliveryTag,
      messageId: safeProperty(delivery?.message.properties.messageId, 100),
      correlationId: safeProperty(delivery?.message.properties.correlationId, 100),
    });
  }

  /**
   * One warn line per failure, at most `warningsPerInterval` per interval: a flood of requests with a bad
   * `replyTo` must not become a flood of log lines. Those left out are counted in one line.
   */
  private warn(line: Record<string, unknown>): void {
    const now = Date.now();
    if (now - this.intervalStartedAt >= this.warningIntervalMs) {
      this.logNotLogged();
      this.intervalStartedAt = now;
    }
    if (this.warnings.take()) this.logger.warn(line);
  }

  /** Ends the interval: one line for the failures not logged one by one. */
  private logNotLogged(): void {
    const leftOut = this.warnings.restart();
    if (leftOut === 0) return;
    this.logger.warn(
      `${leftOut} more reply failures were not logged one by one (MESSAGE_WARNINGS_PER_10S); ` +
        'flashsale_replies_total counts them all',
    );
  }
}
