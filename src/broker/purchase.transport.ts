import { Logger } from '@nestjs/common';
import { type CustomTransportStrategy, type MessageHandler, Server } from '@nestjs/microservices';
import type { ConsumeMessage } from 'amqplib';
import amqp, { type AmqpConnectionManager, type ChannelWrapper } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import { isObservable, lastValueFrom } from 'rxjs';
import type { Settings } from '../config/settings.js';
import { backoffDelayMs } from '../database/backoff.js';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import type { Outcome } from '../purchases/outcome.js';
import { AckCoalescer } from './ack-coalescer.js';
import { BrokerNodes } from './broker-nodes.js';
import { DeadLetterPublisher } from './dead-letter.publisher.js';
import { deliveryCountOf, type Delivery, type LiveChannel } from './delivery.js';
import { MessageSettler } from './message-settler.js';
import type { OutcomeReporter } from '../purchases/outcome.reporter.js';
import { purchaseTopology } from './topology.js';
import { TopologyDeclarer } from './topology.declarer.js';

/** The pattern the purchase handler is registered under (`@EventPattern(PURCHASE_PATTERN)`). */
export const PURCHASE_PATTERN = 'purchase';

export type ConsumerState = 'connecting' | 'consuming' | 'paused' | 'disconnected' | 'closed';

/**
 * A NestJS transport strategy on amqp-connection-manager, because the built-in RMQ transport auto-acks by
 * default, wants a `{pattern, data}` envelope and does not drain on close. This one:
 * - declares the topology on every new channel, then sets per-consumer prefetch and consumes (manual ack);
 * - hands each raw message to the handler of PURCHASE_PATTERN and settles the outcome on the channel that
 *   delivered it (MessageSettler);
 * - re-consumes after a broker-side cancel, pauses and resumes on request (database circuit, shutdown),
 *   and reports its state for /ready.
 */
export class PurchaseTransport extends Server implements CustomTransportStrategy {
  private readonly log = new Logger(PurchaseTransport.name);
  private readonly declarer = new TopologyDeclarer();
  private manager: AmqpConnectionManager | undefined;
  private nodes: BrokerNodes | undefined;
  private consumerChannel: ChannelWrapper | undefined;
  private publisherChannel: ChannelWrapper | undefined;
  private live: LiveChannel | undefined;
  private readonly pauseReasons = new Set<string>();
  private inFlightMessages = 0;
  private drainWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  private settler: MessageSettler | undefined;
  private reconsumeAttempt = 0;
  // Resolved once: Nest's lookup normalises the pattern (a JSON.parse that throws) on every call.
  private purchaseHandler: MessageHandler | undefined;

  constructor(
    private readonly settings: Settings,
    private readonly metrics: WorkerMetrics,
    private readonly reporter: OutcomeReporter,
  ) {
    super();
  }

  get state(): ConsumerState {
    if (this.closing) return 'closed';
    if (!this.live?.open) return this.manager?.isConnected() ? 'connecting' : 'disconnected';
    if (this.live.consumerTag) return 'consuming';
    return this.pauseReasons.size > 0 ? 'paused' : 'connecting';
  }

  get pausedFor(): string[] {
    return [...this.pauseReasons];
  }

  get inFlight(): number {
    return this.inFlightMessages;
  }

  get workerId(): string {
    return this.settings.WORKER_ID;
  }

  /** `host:port` of the broker node in use, for /ready; undefined while disconnected. */
  get brokerNode(): string | undefined {
    return this.nodes?.connected;
  }

  get connection() {
    return this.manager?.connection;
  }

  listen(callback: (...optionalParams: unknown[]) => unknown): void {
    const nodes = new BrokerNodes(this.settings.RABBITMQ_URL, this.settings.WORKER_ID);
    this.nodes = nodes;
    const manager = amqp.connect([...nodes.urls], {
      heartbeatIntervalInSeconds: 5,
      reconnectTimeInSeconds: 1,
      connectionOptions: {
        clientProperties: { connection_name: `flashsale-worker ${this.settings.WORKER_ID}` },
      },
    });
    this.manager = manager;
    if (nodes.urls.length > 1)
      this.log.log(`broker nodes, in the order this worker tries them: ${nodes.describe()}`);
    // The manager waits `reconnectTimeInSeconds` after each of these events, read when it emits them:
    // setting it here gives every next attempt (at the next node of the list) its own jittered delay.
    manager.on('connect', ({ url }) => {
      nodes.connectedTo(url);
      this.log.log(`connected to ${nodes.name(url)}`);
    });
    manager.on('disconnect', ({ err }) => {
      const node = nodes.connected ?? 'the broker';
      const delayMs = nodes.disconnected();
      manager.reconnectTimeInSeconds = delayMs / 1000;
      this.log.warn(`disconnected from ${node}: ${err?.message ?? 'closed'}; next attempt in ${delayMs} ms`);
    });
    manager.on('connectFailed', ({ err, url }) => {
      const delayMs = nodes.attemptFailed();
      manager.reconnectTimeInSeconds = delayMs / 1000;
      this.log.warn(`cannot connect to ${nodes.name(url)}: ${err.message}; next attempt in ${delayMs} ms`);
    });
    this.publisherChannel = this.manager.createChannel({
      name: 'publisher',
      confirm: true,
      publishTimeout: 10_000,
    });
    const deadLetters = new DeadLetterPublisher(
      this.publisherChannel,
      this.settings.DEAD_LETTER_QUEUE,
      this.settings.PURCHASE_QUEUE,
      this.settings.WORKER_ID,
    );
    this.settler = new MessageSettler(deadLetters, this.reporter, this.metrics, {
      queueType: this.settings.QUEUE_TYPE,
      maxDeliveries: this.settings.MAX_DELIVERIES,
      retryBaseMs: this.settings.RETRY_BASE_MS,
      retryMaxMs: this.settings.RETRY_MAX_MS,
    });
    this.consumerChannel = this.manager.createChannel({
      name: 'consumer',
      confirm: false,
      setup: (channel: Channel) => this.setUpConsumer(channel),
    });
    this.consumerChannel.on('error', (error: Error) =>
      this.log.error(`consumer channel error: ${error.message}`),
    );
    this.publisherChannel.on('error', (error: Error) =>
      this.log.error(`publisher channel error: ${error.message}`),
    );
    // Ready or not, the worker runs: /ready says which, and the connection manager keeps trying.
    callback();
  }

  /** Resolves once a consumer is registered (tests and start-up logs). */
  async waitUntilConsuming(): Promise<void> {
    await this.consumerChannel?.waitForConnect();
  }

  /** Shutdown: messages waiting out a retry back-off stay unacked and return to the queue on close. */
  interruptRetryDelays(): void {
    this.settler?.interruptDelays();
  }

  async pause(reason: string): Promise<void> {
    this.pauseReasons.add(reason);
    this.metrics.consumerState(true);
    const live = this.live;
    const tag = live?.consumerTag;
    if (!live?.open || !tag) return;
    live.consumerTag = undefined;
    this.log.warn(`paused consuming from ${this.settings.PURCHASE_QUEUE}: ${reason}`);
    await live.channel.cancel(tag);
  }

  async resume(reason: string): Promise<void> {
    this.pauseReasons.delete(reason);
    if (this.pauseReasons.size > 0 || this.closing || !this.live?.open || this.live.consumerTag) return;
    this.log.log(`resuming consumption from ${this.settings.PURCHASE_QUEUE} (${reason} cleared)`);
    await this.consume(this.live);
  }

  /** Resolves when every received message is settled. */
  async drained(): Promise<void> {
    if (this.inFlightMessages === 0) return;
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  /** Closes channels and connection; unacked messages return to the queue. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.log.log('closing broker connection');
      for (const [what, step] of [
        ['consumer channel', () => this.consumerChannel?.close()],
        ['publisher channel', () => this.publisherChannel?.close()],
        ['connection', () => this.manager?.close()],
      ] as const) {
        try {
          await step();
        } catch (error) {
          this.log.warn(`closing ${what} failed: ${(error as Error).message}`);
        }
      }
      this.metrics.consumerState(true);
      this.log.log('broker connection closed');
    })();
    return this.closing;
  }

  on(): never {
    throw new Error('PurchaseTransport does not emit events to listeners');
  }

  unwrap<T>(): T {
    return this.manager as T;
  }

  private async setUpConsumer(channel: Channel): Promise<void> {
    const live: LiveChannel = {
      channel,
      open: true,
      consumerTag: undefined,
      acks: new AckCoalescer(
        channel,
        (count, error) => {
          live.open = false;
          this.metrics.settled('failed', count);
          this.log.warn(
            `${count} acks not sent, the channel closed (${error.message}); the broker redelivers them`,
          );
        },
        () => this.metrics.ackFrameSent(),
      ),
    };
    channel.once('close', () => {
      live.open = false;
      live.consumerTag = undefined;
      this.metrics.consumerState(true);
    });
    this.live = live;
    await this.declarer.apply(this.manager as AmqpConnectionManager, purchaseTopology(this.settings));
    await channel.prefetch(this.settings.PREFETCH, false);
    if (this.pauseReasons.size === 0) await this.consume(live);
    else this.log.warn(`connected but not consuming: paused for ${this.pausedFor.join(', ')}`);
  }

  private async consume(live: LiveChannel): Promise<void> {
    const { consumerTag } = await live.channel.consume(
      this.settings.PURCHASE_QUEUE,
      (message) => (message ? this.onDelivery(live, message) : this.onCancelledByBroker(live)),
      { noAck: false },
    );
    live.consumerTag = consumerTag;
    this.reconsumeAttempt = 0;
    this.metrics.consumerState(false);
    this.log.log(
      `consuming from ${this.settings.PURCHASE_QUEUE} (prefetch ${this.settings.PREFETCH}, dead letters to ${this.settings.DEAD_LETTER_QUEUE})`,
    );
  }

  /** The broker cancelled our consumer (queue deleted, node down): consume again once the queue is back. */
  private onCancelledByBroker(live: LiveChannel): void {
    live.consumerTag = undefined;
    this.metrics.consumerState(true);
    const delayMs = backoffDelayMs(++this.reconsumeAttempt, 500, this.settings.RETRY_MAX_MS);
    this.log.warn(
      `broker cancelled the consumer of ${this.settings.PURCHASE_QUEUE}; consuming again in ${delayMs} ms`,
    );
    setTimeout(() => {
      if (!live.open || live.consumerTag || this.closing || this.pauseReasons.size > 0) return;
      this.declarer
        .apply(this.manager as AmqpConnectionManager, purchaseTopology(this.settings))
        .then(() => this.consume(live))
        .catch((error: Error) => {
          this.log.error(`consuming again after a cancel failed: ${error.message}`);
          this.onCancelledByBroker(live);
        });
    }, delayMs).unref();
  }

  private onDelivery(live: LiveChannel, message: ConsumeMessage): void {
    this.inFlightMessages++;
    this.metrics.inFlight.inc();
    live.acks.received(message.fields.deliveryTag);
    void this.process({ live, message, deliveryCount: deliveryCountOf(message) });
  }

  private async process(delivery: Delivery): Promise<void> {
    try {
      await this.settler?.settle(delivery, await this.handle(delivery));
    } catch (error) {
      this.log.error({
        msg: `settling a delivery failed: ${(error as Error).message}`,
        deliveryTag: delivery.message.fields.deliveryTag,
        messageId: delivery.message.properties.messageId as string | undefined,
        err: error,
      });
    } finally {
      this.inFlightMessages--;
      this.metrics.inFlight.dec();
      if (this.inFlightMessages === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
    }
  }

  private async handle(delivery: Delivery): Promise<Outcome> {
    this.purchaseHandler ??= this.getHandlerByPattern(PURCHASE_PATTERN) ?? undefined;
    const handler = this.purchaseHandler;
    if (!handler) return { kind: 'retry', error: new Error(`no handler registered for ${PURCHASE_PATTERN}`) };
    try {
      const result: unknown = await handler(delivery.message);
      return (isObservable(result) ? await lastValueFrom(result) : result) as Outcome;
    } catch (error) {
      return { kind: 'retry', error: error as Error };
    }
  }
}
