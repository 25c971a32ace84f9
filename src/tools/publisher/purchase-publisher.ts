import { redactCredentials } from '../../common/log-redaction.js';
import { settledBy, withTimeout, Waiters } from '../../common/waiting.js';
import { randomUUID } from 'node:crypto';
import { injectTraceContext } from '../../observability/tracing.js';
import amqp, { type AmqpConnectionManager, type ChannelWrapper } from 'amqp-connection-manager';
import type { ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { purchaseSchema } from '../../purchases/purchase.schema.js';
import {
  InvalidPurchaseError,
  type NotConfirmedReason,
  PublisherBackpressureError,
  PublisherClosedError,
  PublishNotConfirmedError,
} from './publisher-errors.js';

/** A purchase as the flash-sale API knows it; `timestamp` is when the purchase was made. */
export interface PurchaseInput {
  saleId: string;
  userId: string;
  timestamp: Date | string;
}

export interface PurchasePublisherOptions {
  /** Broker URL, or several to round-robin between on reconnect. */
  url: string | string[];
  /** Queue the purchases go to, through the default exchange (routing key = queue name). Default `purchase`. */
  queue?: string;
  /** Most publishes awaiting a confirm, buffered while disconnected or in flight; past it publish rejects. Default 10 000. */
  maxPendingPublishes?: number;
  /** Longest wait for the broker's confirm of one publish, in milliseconds; 0 waits indefinitely. Default 30 000. */
  publishTimeoutMs?: number;
  /** Declare the queue (durable, no arguments) on every connect. Default off: the worker owns the topology. */
  assertQueue?: boolean;
  /** Wait between two connection attempts, in milliseconds. Default 1000. */
  reconnectDelayMs?: number;
  /** Told about connection changes and setup failures; the publisher keeps going whatever it returns. */
  onConnectionEvent?: (event: PublisherConnectionEvent) => void;
}

export type PublisherConnectionEvent =
  | { type: 'connected'; url: string }
  | { type: 'disconnected' | 'connect-failed' | 'setup-failed'; error: Error }
  | { type: 'blocked'; reason: string }
  | { type: 'unblocked' };

export interface PublishOptions {
  /** AMQP `message-id`; a fresh UUID when absent. */
  messageId?: string;
  /** Extra AMQP headers. */
  headers?: Record<string, unknown>;
  /** Overrides `publishTimeoutMs` for this message. */
  timeoutMs?: number;
}

export type EncodedPurchase = { ok: true; body: Buffer } | { ok: false; problems: string[] };

/** The JSON body of a purchase, or what is wrong with it: the publisher refuses what the worker would reject. */
export function encodePurchase(purchase: PurchaseInput): EncodedPurchase {
  const timestamp =
    purchase.timestamp instanceof Date
      ? Number.isNaN(purchase.timestamp.getTime())
        ? 'Invalid Date'
        : purchase.timestamp.toISOString()
      : purchase.timestamp;
  const message = { saleId: purchase.saleId, userId: purchase.userId, timestamp };
  const parsed = purchaseSchema.safeParse(message);
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`),
    };
  }
  return { ok: true, body: Buffer.from(JSON.stringify(message)) };
}

const DEFAULT_MAX_PENDING_PUBLISHES = 10_000;
const DEFAULT_PUBLISH_TIMEOUT_MS = 30_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;
// A confirm lost with its channel is re-sent on the next channel; past this many channels, give up.
const MAX_SEND_ATTEMPTS = 10;
// amqplib reports a broker nack only through this error text; any other send error means the channel went away.
const AMQPLIB_NACK_MESSAGE = 'message nacked';

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * Publishes purchases the way the worker expects them: persistent JSON on the default exchange with routing
 * key = queue, each one confirmed by the broker before `publish` resolves. While the broker is unreachable,
 * publishes wait for the reconnect, at most `maxPendingPublishes` of them.
 */
export class PurchasePublisher {
  readonly queue: string;
  private readonly maxPendingPublishes: number;
  private readonly publishTimeoutMs: number;
  private connection: AmqpConnectionManager | undefined;
  private channel: ChannelWrapper | undefined;
  private pending = 0;
  private readonly idleWaiters = new Waiters();
  // Message ids the broker returned as unroutable; a return always precedes the confirm on its channel.
  private readonly returnedMessageIds = new Set<string>();
  private closing: Promise<void> | undefined;
  private channelClosedByUs = false;

  constructor(private readonly options: PurchasePublisherOptions) {
    this.queue = options.queue ?? 'purchase';
    this.maxPendingPublishes = positiveInteger(
      'maxPendingPublishes',
      options.maxPendingPublishes ?? DEFAULT_MAX_PENDING_PUBLISHES,
    );
    this.publishTimeoutMs = options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
    if (!Number.isInteger(this.publishTimeoutMs) || this.publishTimeoutMs < 0) {
      throw new RangeError(
        `publishTimeoutMs must be a whole number of milliseconds, got ${this.publishTimeoutMs}`,
      );
    }
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
    connection.on('disconnect', ({ err }) => report({ type: 'disconnected', error: err }));
    connection.on('connectFailed', ({ err }) => report({ type: 'connect-failed', error: err }));
    connection.on('blocked', ({ reason }) => report({ type: 'blocked', reason }));
    connection.on('unblocked', () => report({ type: 'unblocked' }));
    const channel = connection.createChannel({
      name: `purchase-publisher:${this.queue}`,
      confirm: true,
      json: false,
      setup: (confirmChannel: ConfirmChannel) => this.setUpChannel(confirmChannel),
    });
    channel.on('error', (error: Error) => report({ type: 'setup-failed', error }));
    this.connection = connection;
    this.channel = channel;
    return this;
  }

  /** Resolves once connected with the channel set up, or rejects after `timeoutMs`. */
  async waitUntilConnected(timeoutMs = 10_000): Promise<void> {
    const channel = this.start().channel;
    if (!channel) throw new PublisherClosedError(this.queue);
    await withTimeout(
      channel.waitForConnect(),
      timeoutMs,
      `not connected to the broker within ${timeoutMs} ms`,
    );
  }

  /** Publishes awaiting a broker confirm, buffered or in flight. */
  get pendingPublishes(): number {
    return this.pending;
  }

  /** Publishes one purchase; resolves when the broker has confirmed it (it is on disk in the queue). */
  publish(purchase: PurchaseInput, options: PublishOptions = {}): Promise<void> {
    const encoded = encodePurchase(purchase);
    if (!encoded.ok) return Promise.reject(new InvalidPurchaseError(this.queue, encoded.problems));
    return this.publishBody(encoded.body, options);
  }

  /**
   * Publishes a body as it is, without checking it against the message contract (load tests use it to send
   * poison on purpose). Same confirms, bound and timeout as `publish`.
   */
  publishBody(body: Buffer, options: PublishOptions = {}): Promise<void> {
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
    const properties: Options.Publish = {
      persistent: true,
      contentType: 'application/json',
      messageId,
      timestamp: Math.floor(Date.now() / 1000),
      mandatory: true,
      // The caller's trace continues in the worker (W3C traceparent; nothing without OpenTelemetry set up).
      headers: injectTraceContext({ ...options.headers }),
    };
    return this.sendUntilConfirmed(channel, body, properties, messageId, deadline).finally(() =>
      this.settled(),
    );
  }

  /**
   * Stops taking publishes, waits (at most `timeoutMs`) for the confirms of those pending, then closes the
   * channel and the connection. Publishes still pending after the wait reject with reason `closed`.
   * Calling it again returns the same promise.
   */
  close({ timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS }: { timeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.closeInOrder(timeoutMs);
    return this.closing;
  }

  private async closeInOrder(timeoutMs: number): Promise<void> {
    await this.waitForIdle(timeoutMs);
    this.channelClosedByUs = true;
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
    channel.on('return', (message: ConsumeMessage) => {
      const messageId: unknown = message.properties.messageId;
      if (typeof messageId === 'string') this.returnedMessageIds.add(messageId);
    });
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
    this.idleWaiters.wakeAll();
  }

  private async waitForIdle(timeoutMs: number): Promise<void> {
    if (this.pending === 0) return;
    await settledBy(this.idleWaiters.wait(), Date.now() + timeoutMs);
  }
}

function redactUrl(url: unknown): string {
  return typeof url === 'string' ? redactCredentials(url) : '(connection options)';
}
