import type { Span } from '@opentelemetry/api';
import type { Channel, ConsumeMessage } from 'amqplib';
import { Waiters } from '../common/waiting.js';
import type { AckCoalescer, AckReceipt } from '../settlement/ack-coalescer.js';

/**
 * A consumer channel as the transport knows it: delivery tags are only valid on it while it is open, and once
 * it is marked closed (its connection went, it closed, or a send on it threw) nothing is sent on it any more.
 */
export class LiveChannel {
  private isOpen = true;
  /** Set while a consumer is registered on this channel. */
  consumerTag: string | undefined;

  constructor(
    readonly channel: Channel,
    readonly acks: AckCoalescer,
  ) {}

  get open(): boolean {
    return this.isOpen;
  }

  markClosed(): void {
    this.isOpen = false;
    this.consumerTag = undefined;
  }
}

/** Deliveries handed out and not yet finished; the drain at shutdown waits for none to be left. */
export class InFlight {
  private count = 0;
  private readonly drainWaiters = new Waiters();

  get size(): number {
    return this.count;
  }

  add(): void {
    this.count++;
  }

  remove(): void {
    this.count--;
    if (this.count === 0) this.drainWaiters.wakeAll();
  }

  /** Resolves when no delivery is in flight. */
  async drained(): Promise<void> {
    if (this.count > 0) await this.drainWaiters.wait();
  }
}

function headerNumber(value: unknown): number | undefined {
  const number = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  return Number.isFinite(number) && number >= 0 ? number : undefined;
}

export function deliveryCountOf(message: ConsumeMessage): number {
  const headers = message.properties.headers ?? {};
  const previous = headerNumber(headers['x-delivery-count']) ?? headerNumber(headers['x-retry-count']);
  if (previous !== undefined) return previous + 1;
  return message.fields.redelivered ? 2 : 1;
}

/**
 * One message received, which settles itself (in the spirit of Rascal's `ackOrNack`): whoever decides its
 * outcome calls `ack` or `requeue`, which act on the very channel that delivered it and only while it is open
 * (a tag from a dead channel means nothing to the broker, which redelivers the message anyway), then `finish`,
 * which ends its span and takes it out of the in-flight count (the consumer put it there when it arrived).
 */
export class Delivery {
  /** 1 on the first delivery; counted by the quorum queue (`x-delivery-count`) or by `x-retry-count`. */
  readonly deliveryCount: number;
  private finished = false;

  constructor(
    private readonly live: LiveChannel,
    readonly message: ConsumeMessage,
    private readonly inFlight: InFlight,
    /** The message's span while tracing is on (observability/tracing.ts). */
    readonly span?: Span,
  ) {
    this.deliveryCount = deliveryCountOf(message);
  }

  /** Whether the channel that delivered it is open: only then can it be acked or requeued. */
  get isLive(): boolean {
    return this.live.open;
  }

  /**
   * Queues the ack (coalesced with the channel's others), `receipt` told under `index` once it is sent or
   * lost; false when the channel is gone.
   */
  ack(receipt?: AckReceipt, index?: number): boolean {
    return this.send(() => this.live.acks.ack(this.message, receipt, index));
  }

  /** Puts the message back on its queue; false when the channel is gone. */
  requeue(): boolean {
    return this.send(() => {
      this.live.channel.nack(this.message, false, true);
      this.live.acks.settled(this.message.fields.deliveryTag);
    });
  }

  /** Sends the acks queued on its channel now instead of on the next turn; false when the channel is gone. */
  sendAcksNow(): boolean {
    return this.send(() => this.live.acks.flush());
  }

  /** Done with: settled, or given up on for the broker to redeliver. Ends its span; counted once. */
  finish(outcome?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (outcome !== undefined) this.span?.setAttribute('flashsale.outcome', outcome);
    this.span?.end();
    this.inFlight.remove();
  }

  private send(action: () => void): boolean {
    if (!this.live.open) return false;
    try {
      action();
      return true;
    } catch {
      // The channel closed between the check and the send (amqplib throws "Channel closed"); the broker
      // redelivers the message, and its 'close' event tells the consumer the rest.
      this.live.markClosed();
      return false;
    }
  }
}
