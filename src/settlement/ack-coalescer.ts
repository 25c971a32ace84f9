import type { Channel, Message } from 'amqplib';

/**
 * Told once for each ack queued with it whether the ack reached the channel (`sent`) or was lost with it (the
 * channel closed first); `index` is the number the caller queued it under, e.g. its place in a batch.
 */
export interface AckReceipt {
  acked(index: number, sent: boolean): void;
}

interface QueuedAck {
  message: Message;
  receipt: AckReceipt | undefined;
  index: number;
}

/**
 * Coalesces the acks of one channel: acks requested in the same turn of the event loop are sent as one
 * `ack(multiple)` for the longest run of settled deliveries at the head of the channel's window, and one by
 * one for the rest. A batch of 500 committed purchases then costs one frame instead of 500, on the worker
 * and on the broker. Correctness: a multiple-ack of tag N acks every unacked tag ≤ N, so it is only sent for
 * a run in which every earlier tag was settled already (acked, requeued or dead-lettered).
 */
export class AckCoalescer {
  /** Delivery tags received and not yet settled, in delivery order (tags only grow on a channel). */
  private readonly window: number[] = [];
  private head = 0;
  /** Tags settled without going through `ack` here (nack, dead-letter ack sent already). */
  private readonly settledElsewhere = new Set<number>();
  private readonly toAck = new Map<number, QueuedAck>();
  private flushScheduled = false;
  /** Set while acks behind an unsettled delivery wait for it (at most `holdMs`). */
  private holdTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly channel: Pick<Channel, 'ack'>,
    /**
     * Called when the channel refused the acks (it closed under them); the broker redelivers those. Their
     * receipts have been told already: whoever counts outcomes counts them there.
     */
    private readonly onAcksLost: (count: number, error: Error) => void,
    /** Told of every ack frame sent. */
    private readonly onFrameSent: () => void = () => undefined,
    /**
     * How long acks behind a delivery still in progress wait for it, in ms, so that batches committing out of
     * order still go as one multiple-ack; past it they go one by one (a slow message must not hold them).
     */
    private readonly holdMs = 25,
  ) {}

  received(deliveryTag: number): void {
    this.window.push(deliveryTag);
  }

  /**
   * Queues an ack; it is sent before the next turn of the event loop, or, when an earlier delivery is still
   * in progress, with that delivery's run or after `holdMs`, whichever comes first. `receipt` is told which.
   */
  ack(message: Message, receipt?: AckReceipt, index = 0): void {
    this.toAck.set(message.fields.deliveryTag, { message, receipt, index });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushOrReportLoss(false));
    }
  }

  /** The delivery was settled another way (nack, or an ack already sent). */
  settled(deliveryTag: number): void {
    this.settledElsewhere.add(deliveryTag);
  }

  /** Sends every queued ack now. Throws what amqplib throws when the channel has closed. */
  flush(): void {
    this.sendOrLose(true, true);
  }

  /** Sends what may go now, adding each ack sent to `sent`; throws when the channel refuses. */
  private send(all: boolean, sent: QueuedAck[]): void {
    this.flushScheduled = false;
    if (all) {
      clearTimeout(this.holdTimer);
      this.holdTimer = undefined;
    }
    if (this.toAck.size === 0) return;
    const runStart = sent.length;
    while (this.head < this.window.length) {
      const tag = this.window[this.head] as number;
      const queued = this.toAck.get(tag);
      if (queued) {
        this.toAck.delete(tag);
        sent.push(queued);
      } else if (!this.settledElsewhere.delete(tag)) {
        break;
      }
      this.head++;
    }
    this.compact();
    if (sent.length > runStart) {
      try {
        this.channel.ack((sent[sent.length - 1] as QueuedAck).message, true);
      } catch (error) {
        // Not sent: the run is lost with the acks still queued.
        for (const queued of sent.splice(runStart)) this.toAck.set(queued.message.fields.deliveryTag, queued);
        throw error;
      }
      this.onFrameSent();
    }
    if (!all && this.toAck.size > 0) {
      // Behind a delivery still in progress: wait a moment for it, then go one by one.
      this.holdTimer ??= setTimeout(() => {
        this.holdTimer = undefined;
        this.flushOrReportLoss(true);
      }, this.holdMs);
      return;
    }
    // Acks behind a delivery still in progress go one by one: a slow message must not hold back the rest.
    for (const [tag, queued] of this.toAck) {
      this.channel.ack(queued.message);
      this.onFrameSent();
      this.settledElsewhere.add(tag);
      this.toAck.delete(tag);
      sent.push(queued);
    }
  }

  private flushOrReportLoss(all: boolean): void {
    this.sendOrLose(all, false);
  }

  /**
   * Sends what may go now and tells the receipts; when the channel refuses, every ack still queued is lost,
   * and told so.
   */
  private sendOrLose(all: boolean, rethrow: boolean): void {
    const sent: QueuedAck[] = [];
    let refused: { error: Error } | undefined;
    try {
      this.send(all, sent);
    } catch (error) {
      refused = { error: error as Error };
    }
    tell(sent, true);
    if (!refused) return;
    const lost = [...this.toAck.values()];
    this.toAck.clear();
    tell(lost, false);
    this.onAcksLost(lost.length, refused.error);
    if (rethrow) throw refused.error;
  }

  /** Unsettled deliveries on this channel. */
  get outstanding(): number {
    return this.window.length - this.head - this.settledElsewhere.size;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.window.length) {
      this.window.splice(0, this.head);
      this.head = 0;
    }
  }
}

function tell(acks: readonly QueuedAck[], sent: boolean): void {
  for (const { receipt, index } of acks) receipt?.acked(index, sent);
}
