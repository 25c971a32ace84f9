import {
  DEFAULT_PURCHASE_QUEUE,
  encodePurchase,
  PURCHASE_CONTENT_TYPE,
  type PurchaseInput,
} from '@flashsale/contract';
import { context, propagation } from '@opentelemetry/api';
import amqp, { type AmqpConnectionManager, type ChannelWrapper } from 'amqp-connection-manager';
import type { ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { randomUUID } from 'node:crypto';
import {
  InvalidPurchaseError,
  type NotConfirmedReason,
  PublisherBackpressureError,
  PublisherClosedError,
  PublishNotConfirmedError,
} from './publisher-errors.js';
import {
  positiveInteger,
  type PublisherState,
  type PublishOptions,
  type PurchasePublisherOptions,
  redactUrl,
  settledWithin,
  wholeMilliseconds,
} from './publisher-options.js';
import { DIRECT_REPLY_TO, PendingReplies, type PurchaseOutcome } from './purchase-replies.js';

const DEFAULT_MAX_PENDING_PUBLISHES = 10_000;
const DEFAULT_PUBLISH_TIMEOUT_MS = 30_000;
const DEFAULT_REPLY_TIMEOUT_MS = 30_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;
// A confirm lost with its channel is re-sent on the next channel; past this many channels, give up.
const MAX_SEND_ATTEMPTS = 10;
// amqplib reports a broker nack only through this error text; any other send error means the channel went away.
const AMQPLIB_NACK_MESSAGE = 'message nacked';

/**
 * Publishes purchases the way the worker expects them: persistent JSON on the default exchange with routing
 * key = queue, each one confirmed by the broker before `publish` resolves. While the broker is unreachable,
 * publishes wait for the reconnect, at most `maxPendingPublishes` of them. `request` also waits for the
 * worker's reply, through RabbitMQ's direct reply-to.
 */
export class PurchasePublisher {
  readonly queue: string;
  private readonly maxPendingPublishes: number;
  private readonly publishTimeoutMs: number;
  private readonly replyTimeoutMs: number;
  private connection: AmqpConnectionManager | undefined;
  private channel: ChannelWrapper | undefined;
  private pending = 0;
  private idleWaiters: (() => void)[] = [];
  // Message ids the broker returned as unroutable; a return always precedes the confirm on its channel.
  private readonly returnedMessageIds = new Set<string>();
  private readonly replies: PendingReplies;
  private closing: Promise<void> | undefined;
  private channelClosedByUs = false;
  private channelReady = false;
  private blockedReason: string | undefined;

  constructor(private readonly options: PurchasePublisherOptions) {
    this.queue = options.queue ?? DEFAULT_PURCHASE_QUEUE;
    this.maxPendingPublishes = positiveInteger(
      'maxPendingPublishes',
      options.maxPendingPublishes ?? DEFAULT_MAX_PENDING_PUBLISHES,
    );
    this.publishTimeoutMs = wholeMilliseconds(
      'publishTimeoutMs',
      options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS,
    );
    this.replyTimeoutMs = positiveInteger(
      'replyTimeoutMs',
      options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS,
    );
    this.replies = new PendingReplies(this.queue);
  }

  /** Starts connecting (and reconnecting) in the background; publishes made before the first connect wait for it. */
  start(): this {
    if (this.connection || this.closing) return this;
    const urls = Array.isArray(this.options.url) ? this.options.url : [this.options.url];
    const connection = amqp.connect(urls, {
      reconnectTimeInSeconds: (this.options.reconnectDelayMs ?? 1000) / 1000,
    });
    const report = this.options.onConnectionEvent ?? (() => undefined);
    connection.on('connect', ({ url }) => report({ type: 'connected', url: redactUrl(url) }));
    connection.on('disconnect', ({ err }) => {
      this.channelReady = false;
      this.blockedReason = undefined;
      report({ type: 'disconnected', error: err });
    });
    connection.on('connectFailed', ({ err }) => report({ type: 'connect-failed', error: err }));
    connection.on('blocked', ({ reason }) => {
      this.blockedReason = reason;
      report({ type: 'blocked', reason });
    });
    connection.on('unblocked', () => {
      this.blockedReason = undefined;
      report({ type: 'unblocked' });
    });
    const channel = connection.createChannel({
      name: `purchase-publisher:${this.queue}`,
      confirm: true,
      json: false,
      setup: (confirmChannel: ConfirmChannel) => this.setUpChannel(confirmChannel),
    });
    channel.on('connect', () => (this.channelReady = true));
    channel.on('error', (error: Error) => report({ type: 'setup-failed', error }));
    this.connection = connection;
    this.channel = channel;
    return this;
  }

  /** Resolves once connected with the channel set up, or rejects after `timeoutMs`. */
  async waitUntilConnected(timeoutMs = 10_000): Promise<void> {
    const channel = this.start().channel;
    if (!channel) throw new PublisherClosedError(this.queue);
    const connected = await settledWithin(channel.waitForConnect(), timeoutMs);
    if (!connected) throw new Error(`not connected to the broker within ${timeoutMs} ms`);
  }

  /** Publishes awaiting a broker confirm, buffered or in flight. */
  get pendingPublishes(): number {
    return this.pending;
  }

  /** Requests awaiting the worker's reply. */
  get pendingRequests(): number {
    return this.replies.size;
  }

  get state(): PublisherState {
    return {
      connected: this.channelReady && this.connection?.isConnected() === true,
      blockedReason: this.blockedReason,
      pendingPublishes: this.pending,
      maxPendingPublishes: this.maxPendingPublishes,
      closed: this.closing !== undefined,
    };
  }

  /** Publishes one purchase; resolves when the broker has confirmed it (it is on disk in the queue). */
  publish(purchase: PurchaseInput, options: PublishOptions = {}): Promise<void> {
    const encoded = encodePurchase(purchase);
    if (!encoded.ok) return Promise.reject(new InvalidPurchaseError(this.queue, encoded.problems));
    return this.publishBody(encoded.body, options);
  }

  /**
   * Publishes one purchase and resolves with its order once the worker has committed it (`confirmed`, or
   * `duplicate` when the user had bought already); rejects with PurchaseRejectedError when the worker
   * dead-lettered it, PurchaseReplyTimeoutError when no reply came within `timeoutMs` (default
   * `replyTimeoutMs`, the whole wait, confirm included), or the publish's own error. The worker may reply
   * twice to a redelivered message: the first reply settles the request, a later one is dropped.
   */
  async request(purchase: PurchaseInput, options: PublishOptions = {}): Promise<PurchaseOutcome> {
    const encoded = encodePurchase(purchase);
    if (!encoded.ok) throw new InvalidPurchaseError(this.queue, encoded.problems);
    const timeoutMs = positiveInteger('timeoutMs', options.timeoutMs ?? this.replyTimeoutMs);
    const messageId = options.messageId ?? randomUUID();
    const correlationId = randomUUID();
    // Waiting before publishing: the reply may come before the confirm does. A publish that fails ends the
    // wait with its own error.
    const reply = this.replies.expect(correlationId, messageId, timeoutMs);
    const published = this.send(encoded.body, { ...options, messageId, timeoutMs }, correlationId).catch(
      (error: unknown) => this.replies.fail(correlationId, error as Error),
    );
    const [, outcome] = await Promise.all([published, reply]);
    return outcome;
  }

  /**
   * Publishes a body as it is, without checking it against the message contract (load tests use it to send
   * poison on purpose). Same confirms, bound and timeout as `publish`.
   */
  publishBody(body: Buffer, options: PublishOptions = {}): Promise<void> {
    return this.send(body, options, undefined);
  }

  /** One publish, with the reply address of a request when `correlationId` is given. */
  private send(body: Buffer, options: PublishOptions, correlationId: string | undefined): Promise<void> {
    if (this.closing) return Promise.reject(new PublisherClosedError(this.queue));
    if (this.pending >= this.maxPendingPublishes) {
      return Promise.reject(
        new PublisherBackpressureError(this.queue, this.pending, this.maxPendingPublishes),
      );
    }
    const channel = this.start().channel;
    if (!channel) return Promise.reject(new PublisherClosedError(this.queue));
    this.pending += 1;
    const timeoutMs = options.timeoutMs ?? this.publishTimeoutMs;
    const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : undefined;
    const messageId = options.messageId ?? randomUUID();
    const headers = { ...options.headers };
    // The caller's trace continues in the worker (W3C traceparent; nothing without OpenTelemetry set up).
    propagation.inject(context.active(), headers);
    const properties: Options.Publish = {
      persistent: true,
      contentType: PURCHASE_CONTENT_TYPE,
      messageId,
      timestamp: Math.floor(Date.now() / 1000),
      mandatory: true,
      headers,
      ...(correlationId === undefined ? {} : { replyTo: DIRECT_REPLY_TO, correlationId }),
    };
    return this.sendUntilConfirmed(channel, body, properties, messageId, deadline).finally(() =>
      this.settled(),
    );
  }

  /**
   * Stops taking publishes, waits (at most `timeoutMs`) for the confirms of those pending and the replies of
   * the requests, then closes the channel and the connection. Publishes still pending after the wait reject
   * with reason `publisher-closed`, requests with PublisherClosedError. Calling it again returns the same
   * promise.
   */
  close({ timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS }: { timeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.closeInOrder(timeoutMs);
    return this.closing;
  }

  private async closeInOrder(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await settledWithin(this.whenIdle(), timeoutMs);
    await settledWithin(this.replies.whenEmpty(), Math.max(0, deadline - Date.now()));
    this.replies.failAll(new PublisherClosedError(this.queue));
    this.channelClosedByUs = true;
    this.channelReady = false;
    const failures: unknown[] = [];
    try {
      await this.channel?.close();
    } catch (error) {
      failures.push(error);
    }
    try {
      await this.connection?.close();
    } catch (error) {
      failures.push(error);
    }
    if (failures.length > 0)
      throw new AggregateError(failures, `closing the publisher of "${this.queue}" failed`);
  }

  private async setUpChannel(channel: ConfirmChannel): Promise<void> {
    channel.on('close', () => (this.channelReady = false));
    channel.on('return', (message: ConsumeMessage) => {
      const messageId: unknown = message.properties.messageId;
      if (typeof messageId === 'string') this.returnedMessageIds.add(messageId);
    });
    // Before any publish on this channel: a publish naming the direct reply-to needs its consumer first.
    await channel.consume(DIRECT_REPLY_TO, (message) => this.replies.receive(message), { noAck: true });
    if (this.options.assertQueue) await channel.assertQueue(this.queue, { durable: true });
  }

  private async sendUntilConfirmed(
    channel: ChannelWrapper,
    body: Buffer,
    properties: Options.Publish,
    messageId: string,
    deadline: number | undefined,
  ): Promise<void> {
    try {
      for (let attempt = 1; ; attempt += 1) {
        const timeout = deadline === undefined ? undefined : Math.max(1, deadline - Date.now());
        try {
          await channel.sendToQueue(this.queue, body, { ...properties, timeout });
        } catch (error) {
          const reason = this.notConfirmedReason(error, deadline);
          // A confirm lost with its channel: the broker may or may not hold the message; sending it again
          // is safe because the worker absorbs a duplicate purchase.
          if (reason === 'channel-closed' && attempt < MAX_SEND_ATTEMPTS) continue;
          throw new PublishNotConfirmedError(this.queue, messageId, reason, { cause: error });
        }
        if (this.returnedMessageIds.has(messageId)) {
          throw new PublishNotConfirmedError(this.queue, messageId, 'unroutable');
        }
        return;
      }
    } finally {
      this.returnedMessageIds.delete(messageId);
    }
  }

  private notConfirmedReason(error: unknown, deadline: number | undefined): NotConfirmedReason {
    if (this.channelClosedByUs) return 'publisher-closed';
    if (error instanceof Error && error.message === AMQPLIB_NACK_MESSAGE) return 'nacked';
    if (deadline !== undefined && Date.now() >= deadline) return 'timeout';
    return 'channel-closed';
  }

  private settled(): void {
    this.pending -= 1;
    if (this.pending > 0) return;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
