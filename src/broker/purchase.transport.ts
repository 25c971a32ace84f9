import { Logger } from '@nestjs/common';
import { type CustomTransportStrategy, Server } from '@nestjs/microservices';
import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import amqp, { type AmqpConnectionManager, type ChannelWrapper } from 'amqp-connection-manager';
import type { Context } from '@opentelemetry/api';
import { safeProperty } from '../common/safe-text.js';
import type { Settings } from '../config/settings.js';
import { inChildSpanSync, startMessageSpan, tracingActive } from '../observability/tracing.js';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import {
  isCommitted,
  type MessageProcessor,
  type OutcomeListener,
  type Settled,
} from '../purchases/outcome.js';
import { BrokerNodes } from './broker-nodes.js';
import { DeadLetterPublisher, type UnroutablePublishError } from './dead-letter.publisher.js';
import { deliveryCountOf, type Delivery, type LiveChannel } from './delivery.js';
import { MessageSettler } from './message-settler.js';
import { type ConsumerState, PurchaseConsumer } from './purchase-consumer.js';
import { purchaseTopology } from './topology.js';
import { TopologyDeclarer } from './topology.declarer.js';

export type { ConsumerState } from './purchase-consumer.js';

/** A queue a publish was returned from as unroutable, and since when. */
export interface MissingQueue {
  queue: string;
  since: Date;
}

/**
 * A NestJS transport strategy on amqp-connection-manager, because the built-in RMQ transport auto-acks by
 * default, wants a `{pattern, data}` envelope and does not drain on close. This one:
 * - keeps the broker connection and a confirm channel for dead letters and classic retries;
 * - runs the consumer (PurchaseConsumer: prefetch, passive queue checks, consume, pause, resume, re-consume);
 * - hands each raw message straight to the purchase pipeline (a MessageProcessor, no framework dispatch
 *   per message) and settles the outcome on the channel that delivered it (MessageSettler);
 * - reports its state for /ready and /health, and a missing dead-letter queue.
 */
export class PurchaseTransport extends Server implements CustomTransportStrategy {
  private readonly log = new Logger(PurchaseTransport.name);
  private readonly declarer = new TopologyDeclarer();
  private manager: AmqpConnectionManager | undefined;
  private nodes: BrokerNodes | undefined;
  private publisherChannel: ChannelWrapper | undefined;
  private consumer: PurchaseConsumer | undefined;
  private inFlightMessages = 0;
  private drainWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  private settler: MessageSettler | undefined;
  private redeclaring: Promise<void> | undefined;
  private missingQueue: MissingQueue | undefined;

  constructor(
    private readonly settings: Settings,
    private readonly metrics: WorkerMetrics,
    private readonly reporter: OutcomeListener,
    private readonly processor: MessageProcessor<Delivery>,
    private readonly shutdown: AbortSignal,
  ) {
    super();
  }

  get state(): ConsumerState {
    return this.consumer?.state ?? 'disconnected';
  }

  get pausedFor(): string[] {
    return this.consumer?.pausedFor ?? [];
  }

  /** Why the worker cannot consume, in the broker's words (e.g. ACCESS_REFUSED), while it cannot. */
  get consumerProblem(): string | undefined {
    return this.consumer?.problem;
  }

  /** How long the worker has failed to consume though it wanted to, in ms (0 while consuming or paused). */
  get failingToConsumeForMs(): number {
    return this.consumer?.failingForMs ?? 0;
  }

  /** The dead-letter queue (or, for classic retries, the purchase queue) a publish found missing. */
  get missingQueueSince(): MissingQueue | undefined {
    return this.missingQueue;
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
    this.metrics.watchQueues(this.settings.PURCHASE_QUEUE, this.settings.DEAD_LETTER_QUEUE);
    if (nodes.urls.length > 1)
      this.log.log(`broker nodes, in the order this worker tries them: ${nodes.describe()}`);
    // The manager waits `reconnectTimeInSeconds` after each of these events, read when it emits them:
    // setting it here gives every next attempt (at the next node of the list) its own jittered delay.
    manager.on('connect', ({ url }) => {
      nodes.connectedTo(url);
      this.log.log(`connected to ${nodes.name(url)}`);
      this.consumer?.onConnected();
    });
    manager.on('disconnect', ({ err }) => {
      const node = nodes.connected ?? 'the broker';
      const delayMs = nodes.disconnected();
      manager.reconnectTimeInSeconds = delayMs / 1000;
      this.log.warn(`disconnected from ${node}: ${err?.message ?? 'closed'}; next attempt in ${delayMs} ms`);
      this.consumer?.onDisconnected();
    });
    manager.on('connectFailed', ({ err, url }) => {
      const delayMs = nodes.attemptFailed();
      manager.reconnectTimeInSeconds = delayMs / 1000;
      this.log.warn(`cannot connect to ${nodes.name(url)}: ${err.message}; next attempt in ${delayMs} ms`);
    });
    this.publisherChannel = manager.createChannel({
      name: 'publisher',
      confirm: true,
      publishTimeout: 10_000,
      setup: (channel: ConfirmChannel) => {
        channel.on('return', (message) => deadLetters.onReturned(message));
      },
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
      onUnroutable: (error) => this.onUnroutable(error),
      onDeadLettered: () => this.onDeadLettered(),
      signal: this.shutdown,
    });
    this.processor.connect((settled, trace) => this.onSettled(settled, trace));
    this.consumer = new PurchaseConsumer(
      {
        openChannel: () => this.openChannel(),
        prepare: () => this.declareTopology(),
        onDelivery: (live, message) => this.onDelivery(live, message),
        onPausedChange: (paused) => this.metrics.consumerState(paused),
        onAckFrame: () => this.metrics.ackFrameSent(),
        onAcksLost: (count) => this.metrics.settled('failed', count),
      },
      {
        queue: this.settings.PURCHASE_QUEUE,
        prefetch: this.settings.PREFETCH,
        retryBaseMs: this.settings.RETRY_BASE_MS,
        retryMaxMs: this.settings.RETRY_MAX_MS,
      },
    );
    this.publisherChannel.on('error', (error: Error) =>
      this.log.error(`publisher channel error: ${error.message}`),
    );
    // Ready or not, the worker runs: /ready says which, and the connection manager keeps trying.
    callback();
  }

  /** Stops consuming for `reason` until `resume(reason)`; resolves once the consumer is cancelled. */
  async pause(reason: string): Promise<void> {
    await this.consumer?.pause(reason);
  }

  resume(reason: string): void {
    this.consumer?.resume(reason);
  }

  /** Resolves when every received message is settled. */
  async drained(): Promise<void> {
    if (this.inFlightMessages === 0) return;
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Stops consuming, sends the acks still coalescing, closes channels and connection; unacked messages
   * return to the queue. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.log.log('closing broker connection');
      for (const [what, step] of [
        ['consumer', () => this.consumer?.close()],
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

  private async openChannel(): Promise<Channel> {
    const connection = this.manager?.connection;
    if (!connection) throw new Error('not connected to the broker');
    return connection.createChannel();
  }

  private async declareTopology(): Promise<void> {
    await this.declarer.apply(this.manager ?? { connection: undefined }, purchaseTopology(this.settings));
  }

  /** A publish came back unroutable: say so, and declare the missing queue again (once at a time). */
  private onUnroutable(error: UnroutablePublishError): void {
    this.metrics.publishReturned(error.queue);
    this.metrics.queueMissingState(error.queue, true);
    if (!this.missingQueue) {
      this.missingQueue = { queue: error.queue, since: new Date() };
      this.log.error(
        `queue ${error.queue} is missing: publishes to it are returned unroutable; messages stay on ` +
          `${this.settings.PURCHASE_QUEUE} and are retried after a back-off while the topology is declared again`,
      );
    }
    this.redeclaring ??= this.declareTopology()
      .catch((cause: Error) => this.log.error(`declaring the topology again failed: ${cause.message}`))
      .finally(() => (this.redeclaring = undefined));
  }

  private onDeadLettered(): void {
    if (!this.missingQueue) return;
    this.log.log(`queue ${this.missingQueue.queue} takes publishes again`);
    this.metrics.queueMissingState(this.missingQueue.queue, false);
    this.missingQueue = undefined;
  }

  private onDelivery(live: LiveChannel, message: ConsumeMessage): void {
    this.inFlightMessages++;
    this.metrics.inFlight.inc();
    live.acks.received(message.fields.deliveryTag);
    const delivery: Delivery = { live, message, deliveryCount: deliveryCountOf(message) };
    if (tracingActive()) {
      delivery.span = startMessageSpan(
        this.settings.PURCHASE_QUEUE,
        message.properties.headers,
        safeProperty(message.properties.messageId),
      );
    }
    try {
      this.processor.process(message, delivery, delivery.span?.spanContext());
    } catch (error) {
      // The pipeline turns every known failure into an outcome; anything else goes back to the broker.
      this.onSettled([{ token: delivery, outcome: { kind: 'retry', error: error as Error } }]);
    }
  }

  /** Outcomes from the pipeline, a batch at a time: committed ones are acked at once, the rest one by one. */
  private onSettled(settled: readonly Settled<Delivery>[], trace?: Context): void {
    const settler = this.settler as MessageSettler;
    const committed = settled.filter(({ outcome }) => isCommitted(outcome));
    if (committed.length > 0) {
      inChildSpanSync(trace, 'ack', () => settler.settleCommitted(committed));
      for (const { token } of committed) token.span?.end();
      this.finished(committed.length);
    }
    if (committed.length === settled.length) return;
    for (const { token: delivery, outcome } of settled) {
      if (isCommitted(outcome)) continue;
      settler
        .settle(delivery, outcome)
        .catch((error: Error) =>
          this.log.error({
            msg: `settling a delivery failed: ${error.message}`,
            deliveryTag: delivery.message.fields.deliveryTag,
            messageId: safeProperty(delivery.message.properties.messageId),
            err: error,
          }),
        )
        .finally(() => {
          delivery.span?.setAttribute('flashsale.outcome', outcome.kind);
          delivery.span?.end();
          this.finished(1);
        });
    }
  }

  private finished(count: number): void {
    this.inFlightMessages -= count;
    this.metrics.inFlight.dec(count);
    if (this.inFlightMessages === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
  }
}
