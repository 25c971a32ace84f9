import { Logger } from '@nestjs/common';
import type { Channel, ConfirmChannel, Message, Options } from 'amqplib';
import {
  type AmqpConnectionManager,
  AmqpConnectionManagerClass,
  type ChannelWrapper,
} from 'amqp-connection-manager';
import type { Settings } from '../config/settings.js';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import { BrokerNodes } from '../common/broker-nodes.js';
import { purchaseTopology } from './topology.js';
import { TopologyDeclarer } from './topology.declarer.js';

/** Heartbeats find a dead peer (a node gone without closing its sockets) within two intervals. */
const HEARTBEAT_SECONDS = 5;
/** Delay before the first reconnect; every later one is the node list's jittered back-off. */
const FIRST_RECONNECT_SECONDS = 1;
/** Longest wait for the broker to confirm a dead-letter or retry publish before it counts as failed. */
const PUBLISH_CONFIRM_TIMEOUT_MS = 10_000;

/** A queue a publish was returned from as unroutable, and since when. */
export interface MissingQueue {
  queue: string;
  since: Date;
}

/** What the connection tells the consumer: the connection is up (consume), or gone with its channels. */
export interface ConnectionListener {
  onConnected(): void;
  onDisconnected(): void;
}

/**
 * The worker's connection to RabbitMQ (amqp-connection-manager): the node list and reconnects, a confirm
 * channel for dead letters and classic retries (`publish`), new channels for the consumer and the depth
 * checks, the queues' declaration, and which queue a returned publish found missing.
 */
export class BrokerConnection {
  private readonly log = new Logger(BrokerConnection.name);
  private readonly nodes: BrokerNodes;
  private readonly manager: AmqpConnectionManager;
  private readonly declarer = new TopologyDeclarer();
  private readonly returnListeners: ((message: Message) => void)[] = [];
  private missingQueue: MissingQueue | undefined;
  private publisherRefusal: { reason: string; at: number } | undefined;
  private redeclaring: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  /** Confirm channel for the worker's own publishes (dead letters, classic retries). */
  private publisher: ChannelWrapper;

  constructor(
    private readonly settings: Settings,
    private readonly metrics: WorkerMetrics,
  ) {
    this.nodes = new BrokerNodes(settings.RABBITMQ_URL, settings.WORKER_ID);
    this.manager = new AmqpConnectionManagerClass([...this.nodes.urls], {
      heartbeatIntervalInSeconds: HEARTBEAT_SECONDS,
      reconnectTimeInSeconds: FIRST_RECONNECT_SECONDS,
      connectionOptions: {
        // No Nagle delay (as RabbitMQ's server and Java client set by default): a reply written right behind
        // its ack frame otherwise waits for the broker's delayed TCP ack of that frame (about 40 ms on Linux).
        noDelay: true,
        clientProperties: { connection_name: `flashsale-worker ${settings.WORKER_ID}` },
      },
    });
    this.publisher = this.openPublisher();
    metrics.watchPublishRefused(() => this.publishRefused !== undefined);
  }

  /** `host:port` of the node in use, for /ready; undefined while disconnected. */
  get node(): string | undefined {
    return this.nodes.connected;
  }

  /** The current amqplib connection; undefined while disconnected. */
  get current() {
    return this.manager.connection;
  }

  /** The queue a publish found missing, until a dead letter gets through again. */
  get missingQueueSince(): MissingQueue | undefined {
    return this.missingQueue;
  }

  /** The broker's words for the last refused publish (ACCESS_REFUSED, say), until a publish is confirmed again. */
  get publishRefused(): string | undefined {
    const refusal = this.publisherRefusal;
    // Held for two of the longest back-offs: a message retried at the longest back-off refreshes it, and a
    // refusal nothing has tried again since (no more poison) does not hold /ready down forever.
    if (!refusal || Date.now() - refusal.at > 2 * this.settings.RETRY_MAX_MS) return undefined;
    return refusal.reason;
  }

  /** Called with every message the broker returns to the publisher channel (a `mandatory` publish unrouted). */
  onReturned(listener: (message: Message) => void): void {
    this.returnListeners.push(listener);
  }

  /**
   * Connects, and keeps reconnecting, moving along the node list with jittered back-off; tells `listener`
   * whenever the connection comes or goes. Returns at once: the first attempt may still fail.
   */
  start(listener: ConnectionListener): void {
    const { nodes, manager } = this;
    this.metrics.watchQueues(this.settings.PURCHASE_QUEUE, this.settings.DEAD_LETTER_QUEUE);
    if (nodes.urls.length > 1)
      this.log.log(`broker nodes, in the order this worker tries them: ${nodes.describe()}`);
    // The manager waits `reconnectTimeInSeconds` after each of these events, read when it emits them:
    // setting it here gives every next attempt (at the next node of the list) its own jittered delay.
    manager.on('connect', ({ url }) => {
      nodes.connectedTo(url);
      this.log.log(`connected to ${nodes.name(url)}`);
      listener.onConnected();
    });
    manager.on('disconnect', ({ err }) => {
      const node = nodes.connected ?? 'the broker';
      const delayMs = nodes.disconnected();
      manager.reconnectTimeInSeconds = delayMs / 1000;
      this.log.warn(`disconnected from ${node}: ${err?.message ?? 'closed'}; next attempt in ${delayMs} ms`);
      listener.onDisconnected();
    });
    manager.on('connectFailed', ({ err, url }) => {
      const delayMs = nodes.attemptFailed();
      manager.reconnectTimeInSeconds = delayMs / 1000;
      this.log.warn(`cannot connect to ${nodes.name(url)}: ${err.message}; next attempt in ${delayMs} ms`);
    });
    // Failures are the events above; the manager keeps trying until closed.
    manager.connect().catch((error: Error) => this.log.debug(`first connection attempt: ${error.message}`));
  }

  /**
   * Publishes with a broker confirm on the publisher channel; rejects when the broker refuses, when the
   * channel closes first, or after PUBLISH_CONFIRM_TIMEOUT_MS without a confirm.
   */
  async publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
  ): Promise<void> {
    await this.publisher.publish(exchange, routingKey, content, options);
    if (this.publisherRefusal) {
      this.log.log('publishes are confirmed again');
      this.publisherRefusal = undefined;
    }
  }

  /** A new channel on the current connection; rejects while there is none. */
  async openChannel(): Promise<Channel> {
    const connection = this.manager.connection;
    if (!connection) throw new Error('not connected to the broker');
    return connection.createChannel();
  }

  /** Checks the queues passively and declares only the missing ones (src/broker/topology.declarer.ts). */
  async declareTopology(): Promise<void> {
    await this.declarer.apply(this.manager, purchaseTopology(this.settings));
  }

  /** A publish came back unroutable from `queue`: say so, and declare the missing queue again (once at a time). */
  queueMissing(queue: string): void {
    this.metrics.publishReturned(queue);
    this.metrics.queueMissingState(queue, true);
    if (!this.missingQueue) {
      this.missingQueue = { queue, since: new Date() };
      this.log.error(
        `queue ${queue} is missing: publishes to it are returned unroutable; messages stay on ` +
          `${this.settings.PURCHASE_QUEUE} and are retried after a back-off while the topology is declared again`,
      );
    }
    this.redeclaring ??= this.declareTopology()
      .catch((cause: Error) => this.log.error(`declaring the topology again failed: ${cause.message}`))
      .finally(() => (this.redeclaring = undefined));
  }

  /** A dead letter got through: the queue that was missing takes publishes again. */
  queueBack(): void {
    if (!this.missingQueue) return;
    this.log.log(`queue ${this.missingQueue.queue} takes publishes again`);
    this.metrics.queueMissingState(this.missingQueue.queue, false);
    this.missingQueue = undefined;
  }

  private openPublisher(): ChannelWrapper {
    const publisher = this.manager.createChannel({
      name: 'publisher',
      confirm: true,
      publishTimeout: PUBLISH_CONFIRM_TIMEOUT_MS,
      setup: (channel: ConfirmChannel) => {
        channel.on('return', (message: Message) => {
          for (const listener of this.returnListeners) listener(message);
        });
        // A refused publish (ACCESS_REFUSED, NOT_FOUND) closes the channel with an error: without a listener
        // the error would be thrown on the connection and take the consumer down with it.
        channel.on('error', (error: Error) => {
          this.publisherRefusal = { reason: error.message, at: Date.now() };
          this.log.error(`publisher channel: ${error.message}`);
        });
        channel.on('close', () => setImmediate(() => this.onPublisherClosed(publisher)));
      },
    });
    publisher.on('error', (error: Error) => this.log.error(`publisher channel error: ${error.message}`));
    return publisher;
  }

  /**
   * The broker closed the publisher channel while the connection stays (a publish refused with
   * ACCESS_REFUSED, say). amqp-connection-manager opens a channel again only on a reconnect, so until then
   * every publish would wait for its timeout: the worker replaces the channel at once. The publishes still
   * waiting on the old one fail ("Channel closed"); their messages are requeued after a back-off.
   * (A channel closed with its connection is left to the reconnect.)
   */
  private onPublisherClosed(publisher: ChannelWrapper): void {
    if (this.closing || publisher !== this.publisher || !this.manager.isConnected()) return;
    this.log.warn('the broker closed the publisher channel; opening a new one');
    this.publisher = this.openPublisher();
    publisher
      .close()
      .catch((error: Error) => this.log.debug(`closing the old publisher channel: ${error.message}`));
  }

  /** Closes the publisher channel, then the connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.publisher
        .close()
        .catch((error: Error) => this.log.warn(`closing the publisher channel failed: ${error.message}`));
      await this.manager.close();
      this.log.log('broker connection closed');
    })();
    return this.closing;
  }
}
