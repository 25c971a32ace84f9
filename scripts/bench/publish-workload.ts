import { setTimeout as sleep } from 'node:timers/promises';
import type { PurchasePublisher } from '@flashsale/publisher';
import { encodeEntry, type WorkloadEntry } from '../workload.js';

export interface PublishPacing {
  /** Messages per second; 0 publishes as fast as confirms come back. */
  ratePerSecond?: number;
  /** Publishes awaiting a confirm at once; keep it under the publisher's maxPendingPublishes. Default 1000. */
  maxInFlight?: number;
  /** Called after each confirm or failure with the number settled so far. */
  onSettled?: (settled: number) => void;
}

export interface PublishResult {
  published: number;
  failed: number;
  /** The first few failures, to show why. */
  failures: Error[];
  startedAt: Date;
  finishedAt: Date;
}

/**
 * Publishes every entry, each stamped with the time it is handed to the publisher (its purchase time, so
 * orders.created_at − purchased_at is publish→commit latency), at a fixed rate or as fast as possible.
 */
export async function publishWorkload(
  publisher: PurchasePublisher,
  entries: readonly WorkloadEntry[],
  { ratePerSecond = 0, maxInFlight = 1000, onSettled }: PublishPacing = {},
): Promise<PublishResult> {
  const startedAt = new Date();
  const result: PublishResult = { published: 0, failed: 0, failures: [], startedAt, finishedAt: startedAt };
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const settle = () => {
    inFlight -= 1;
    onSettled?.(result.published + result.failed);
    wake?.();
    wake = undefined;
  };
  for (const [index, entry] of entries.entries()) {
    if (ratePerSecond > 0) {
      const dueInMs = startedAt.getTime() + (index * 1000) / ratePerSecond - Date.now();
      if (dueInMs >= 1) await sleep(dueInMs);
    }
    while (inFlight >= maxInFlight) await new Promise<void>((resolve) => (wake = resolve));
    inFlight += 1;
    publisher
      .publishBody(encodeEntry(entry, new Date()))
      .then(
        () => {
          result.published += 1;
        },
        (error: Error) => {
          result.failed += 1;
          if (result.failures.length < 5) result.failures.push(error);
        },
      )
      .finally(settle);
  }
  while (inFlight > 0) await new Promise<void>((resolve) => (wake = resolve));
  result.finishedAt = new Date();
  return result;
}
