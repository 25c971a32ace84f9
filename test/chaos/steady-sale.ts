import type { PurchaseChannel } from './purchase-channel.js';

/** How often the sale publishes its next slice. */
const TICK_MS = 100;

/**
 * A sale at a steady rate, as a flash sale's API publishes while something fails: every TICK_MS the bodies due
 * by then are published and their confirms awaited, so `confirmed` counts what the broker has accepted.
 */
export class SteadySale {
  /** Bodies the broker has confirmed so far, in publishing order from the first. */
  confirmed = 0;
  private finished: Promise<void> = Promise.resolve();
  private startedMs = 0;

  private constructor(
    private readonly channel: PurchaseChannel,
    private readonly queue: string,
    private readonly bodies: string[],
    readonly perSecond: number,
  ) {}

  /** Starts publishing `bodies` to `queue` at `perSecond`. */
  static start(channel: PurchaseChannel, queue: string, bodies: string[], perSecond: number): SteadySale {
    const sale = new SteadySale(channel, queue, bodies, perSecond);
    sale.finished = sale.run();
    return sale;
  }

  /** How long publishing all of the bodies takes at the rate, in milliseconds. */
  get durationMs(): number {
    return Math.ceil((this.bodies.length / this.perSecond) * 1000);
  }

  /** Resolves once every body is published and confirmed; rejects with the failure of a publish. */
  done(): Promise<void> {
    return this.finished;
  }

  private async run(): Promise<void> {
    this.startedMs = Date.now();
    while (this.confirmed < this.bodies.length) {
      const due = Math.min(
        this.bodies.length,
        Math.ceil(((Date.now() - this.startedMs) / 1000) * this.perSecond),
      );
      if (due > this.confirmed) {
        try {
          await this.channel.publish(this.queue, this.bodies.slice(this.confirmed, due));
        } catch (error) {
          throw new Error(`publishing purchases ${this.confirmed}..${due} of the sale failed`, {
            cause: error,
          });
        }
        this.confirmed = due;
      }
      // Pacing, not synchronisation: the next slice is due one tick later.
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    }
  }
}
