import { Logger } from '@nestjs/common';
import type { Channel, ConsumeMessage } from 'amqplib';
import { backoffDelayMs, sleep } from '../common/backoff.js';
import { safeProperty } from '../common/safe-text.js';
import type { Settings } from '../config/settings.js';
import { startMessageSpan, tracingActive } from '../observability/tracing.js';
import type { MessageProcessor } from '../purchases/outcome.js';
import { AckCoalescer } from '../settlement/ack-coalescer.js';
import { Delivery, InFlight, LiveChannel } from './delivery.js';

export type ConsumerState = 'connecting' | 'consuming' | 'paused' | 'disconnected' | 'closed';

/** What the consumer needs of the broker connection (BrokerConnection). */
export interface ConsumerBroker {
  /** A new channel on the current connection; rejects when there is none. */
  openChannel(): Promise<Channel>;
  /** Makes sure the queues exist (passive checks, declares only what is missing). */
  declareTopology(): Promise<void>;
}

/** What the consumer tells the metrics. */
export interface ConsumerEvents {
  /** Told whenever consuming starts (false) or stops (true). */
  onPausedChange(paused: boolean): void;
  /**
   * Told of every ack frame sent. Acks lost with their channel are not told here: the settler reports their
   * messages as not settled, and the outcome reporter counts them as failed, once.
   */
  onAckFrame(): void;
}

export interface ConsumerOptions {
  /** The queue consumed (PURCHASE_QUEUE). */
  queue: string;
  /** Unacked messages the broker hands out at once, per consumer (PREFETCH). */
  prefetch: number;
  /** Back-off between failed attempts to start consuming, in ms (RETRY_BASE_MS, up to RETRY_MAX_MS). */
  retryBaseMs: number;
  retryMaxMs: number;
}

/** The consumer's options from the settings: the one mapping. */
export function consumerOptions(
  settings: Pick<Settings, 'PURCHASE_QUEUE' | 'PREFETCH' | 'RETRY_BASE_MS' | 'RETRY_MAX_MS'>,
): ConsumerOptions {
  return {
    queue: settings.PURCHASE_QUEUE,
    prefetch: settings.PREFETCH,
    retryBaseMs: settings.RETRY_BASE_MS,
    retryMaxMs: settings.RETRY_MAX_MS,
  };
}

/**
 * Owns the consumer channel and its one consumer: open a channel, set per-consumer prefetch, check the
 * queues, consume; pause, resume, and re-consume after a broker-side cancel or a failure, with back-off.
 * Every change goes through one loop that compares what is wanted (connected, not paused, not closing) with
 * what is (a consumer registered or not) and takes one step at a time, so a pause arriving during a
 * `basic.consume` cancels the new consumer as soon as it exists, a resume during one never starts a second
 * consumer, and the channel is used for consuming only after its `basic.qos` is set.
 * Each message received becomes a Delivery, handed to the purchase pipeline, that settles itself; the
 * deliveries in flight (handed out, not yet finished) are what the drain at shutdown waits for.
 */
export class PurchaseConsumer {
  private readonly logger = new Logger(PurchaseConsumer.name);
  private live: LiveChannel | undefined;
  private connected = false;
  private closing = false;
  private readonly pauseReasons = new Set<string>();
  private failures = 0;
  private lastProblem: string | undefined;
  private notConsumingSince: number | undefined = Date.now();
  private running: Promise<void> | undefined;
  private kicked = false;
  private wakeUp: (() => void) | undefined;
  private readonly deliveries = new InFlight();

  constructor(
    private readonly broker: ConsumerBroker,
    private readonly pipeline: MessageProcessor<Delivery>,
    private readonly hooks: ConsumerEvents,
    private readonly options: ConsumerOptions,
  ) {}

  get state(): ConsumerState {
    if (this.closing) return 'closed';
    if (!this.connected) return 'disconnected';
    if (this.live?.open && this.live.consumerTag) return 'consuming';
    return this.pauseReasons.size > 0 ? 'paused' : 'connecting';
  }

  get pausedFor(): string[] {
    return [...this.pauseReasons];
  }

  /** The broker's words for the last failure to consume, until consuming starts again. */
  get problem(): string | undefined {
    return this.lastProblem;
  }

  /**
   * How long the worker has wanted to consume and could not (broker away, queue missing, permission
   * refused), in ms; 0 while consuming, paused on purpose or closing.
   */
  get failingForMs(): number {
    if (this.closing || this.pauseReasons.size > 0 || this.notConsumingSince === undefined) return 0;
    return Date.now() - this.notConsumingSince;
  }

  /** Deliveries handed out and not yet finished. */
  get inFlight(): number {
    return this.deliveries.size;
  }

  /** Resolves when every delivery handed out is finished. */
  drained(): Promise<void> {
    return this.deliveries.drained();
  }

  /** The connection is up: consume unless paused. */
  onConnected(): void {
    this.connected = true;
    void this.kick();
  }

  /** The connection is gone with its channels: every delivery tag of it is void. */
  onDisconnected(): void {
    this.connected = false;
    this.forget(this.live);
    void this.kick();
  }

  pause(reason: string): Promise<void> {
    this.pauseReasons.add(reason);
    return this.kick();
  }

  /** Consumes again once no other pause reason is left; does not wait for the consumer to start. */
  resume(reason: string): void {
    if (this.pauseReasons.delete(reason) && this.pauseReasons.size === 0) {
      this.logger.log(`resuming consumption from ${this.options.queue} (${reason} cleared)`);
      // Time paused on purpose is not time failing to consume.
      if (this.notConsumingSince !== undefined) this.notConsumingSince = Date.now();
    }
    void this.kick();
  }

  /**
   * Stops consuming, sends every ack already due, and closes the channel; unacked messages return to the
   * queue. Call after the in-flight messages are settled (or given up on).
   */
  async close(): Promise<void> {
    this.closing = true;
    await this.kick();
    const live = this.live;
    if (!live?.open) return;
    try {
      // Acks are coalesced and sent on the next turn: send them now, before the channel goes.
      live.acks.flush();
    } catch (error) {
      this.logger.warn(
        `acks not sent before closing: ${(error as Error).message}; the broker redelivers them`,
      );
    }
    this.forget(live);
    await live.channel
      .close()
      .catch((error: Error) => this.logger.debug(`closing consumer channel: ${error.message}`));
  }

  /** Runs the loop, or makes the running one look again; resolves when it has nothing left to do. */
  private kick(): Promise<void> {
    this.kicked = true;
    this.wakeUp?.();
    this.running ??= this.run();
    return this.running;
  }

  private async run(): Promise<void> {
    try {
      while (this.kicked) {
        this.kicked = false;
        await this.reconcile();
      }
    } finally {
      this.running = undefined;
    }
  }

  private wantsToConsume(): boolean {
    return this.connected && !this.closing && this.pauseReasons.size === 0;
  }

  private async reconcile(): Promise<void> {
    for (;;) {
      const live = this.live?.open ? this.live : undefined;
      const consuming = live?.consumerTag !== undefined;
      if (this.wantsToConsume() && !consuming) {
        if (this.failures > 0 && !(await this.backOff())) continue;
        await this.tryToConsume();
      } else if (!this.wantsToConsume() && consuming && live) {
        await this.cancel(live);
      } else {
        return;
      }
    }
  }

  private async tryToConsume(): Promise<void> {
    try {
      await this.startConsuming();
      this.failures = 0;
    } catch (error) {
      this.failures++;
      this.lastProblem = (error as Error).message;
      this.logger.error(
        `cannot consume from ${this.options.queue} (attempt ${this.failures}): ${this.lastProblem}`,
      );
    }
  }

  /** Waits out the back-off of the last failure; false when woken early (something changed). */
  private async backOff(): Promise<boolean> {
    const early = new AbortController();
    this.wakeUp = () => early.abort();
    await sleep(
      backoffDelayMs(this.failures, this.options.retryBaseMs, this.options.retryMaxMs),
      early.signal,
    );
    this.wakeUp = undefined;
    return !early.signal.aborted;
  }

  private async startConsuming(): Promise<void> {
    const live = this.live?.open ? this.live : await this.openLiveChannel();
    await this.broker.declareTopology();
    if (!this.wantsToConsume() || !live.open) return; // the loop looks again
    const { consumerTag } = await live.channel.consume(
      this.options.queue,
      (message) => (message ? this.receive(live, message) : this.onCancelledByBroker(live)),
      { noAck: false },
    );
    // Set even when a pause came meanwhile: the loop then cancels this very consumer.
    live.consumerTag = consumerTag;
    this.lastProblem = undefined;
    this.notConsumingSince = undefined;
    this.hooks.onPausedChange(false);
    this.logger.log(`consuming from ${this.options.queue} (prefetch ${this.options.prefetch})`);
  }

  /** A channel with its prefetch set; only then is it the live channel. */
  private async openLiveChannel(): Promise<LiveChannel> {
    const channel = await this.broker.openChannel();
    channel.on('error', (error: Error) => {
      this.lastProblem = error.message;
      this.logger.warn(`consumer channel error: ${error.message}`);
    });
    try {
      await channel.prefetch(this.options.prefetch, false);
    } catch (error) {
      await channel.close().catch(() => undefined); // already closed by the broker's refusal
      throw error;
    }
    const live: LiveChannel = new LiveChannel(
      channel,
      new AckCoalescer(
        channel,
        (count, error) => {
          this.forget(live);
          this.logger.warn(
            `${count} acks not sent, the channel closed (${error.message}); the broker redelivers them`,
          );
        },
        () => this.hooks.onAckFrame(),
      ),
    );
    channel.once('close', () => {
      const wasConsuming = live.consumerTag !== undefined;
      this.forget(live);
      if (wasConsuming && !this.closing) {
        this.failures = Math.max(this.failures, 1);
        void this.kick();
      }
    });
    this.live = live;
    return live;
  }

  private async cancel(live: LiveChannel): Promise<void> {
    const tag = live.consumerTag as string;
    this.logger.warn(
      `paused consuming from ${this.options.queue}: ${this.pausedFor.join(', ') || 'closing'}`,
    );
    try {
      await live.channel.cancel(tag);
    } catch (error) {
      // The channel closed under the cancel: the consumer went with it.
      this.logger.debug(`cancelling the consumer: ${(error as Error).message}`);
      this.forget(live);
    }
    if (live.consumerTag === tag) live.consumerTag = undefined;
    this.markNotConsuming();
  }

  private receive(live: LiveChannel, message: ConsumeMessage): void {
    this.deliveries.add();
    live.acks.received(message.fields.deliveryTag);
    const span = tracingActive()
      ? startMessageSpan(
          this.options.queue,
          message.properties.headers,
          safeProperty(message.properties.messageId),
        )
      : undefined;
    const delivery = new Delivery(live, message, this.deliveries, span);
    this.pipeline.process(message, delivery, span?.spanContext());
  }

  /** The broker cancelled our consumer (queue deleted, its node down): consume again after a back-off. */
  private onCancelledByBroker(live: LiveChannel): void {
    live.consumerTag = undefined;
    this.failures++;
    this.lastProblem = `the broker cancelled the consumer of ${this.options.queue} (queue deleted or its node down)`;
    this.logger.warn(`${this.lastProblem}; consuming again after a back-off`);
    this.markNotConsuming();
    void this.kick();
  }

  /** Drops a channel that closed or whose connection went: nothing is sent on it any more. */
  private forget(live: LiveChannel | undefined): void {
    if (!live) return;
    live.markClosed();
    if (this.live === live) this.live = undefined;
    this.markNotConsuming();
  }

  private markNotConsuming(): void {
    this.notConsumingSince ??= Date.now();
    this.hooks.onPausedChange(true);
  }
}
