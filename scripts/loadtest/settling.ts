import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { countOrders } from '../bench/order-stats.js';
import { startProgress } from '../bench/progress.js';
import type { QueueProbe } from '../bench/queue-probe.js';

/** The load test could not start: a queue is missing or a server is unreachable. */
export class LoadTestSetupError extends Error {
  override readonly name = 'LoadTestSetupError';
}

/** Where the fleet's queues are and how long to wait for it to persist a burst. */
export interface SettlingOptions {
  queue: string;
  deadLetterQueue: string;
  /** Longest wait for the fleet to persist everything after the last publish, in milliseconds. */
  settleTimeoutMs: number;
  /** The fleet is done when the queue is empty and nothing moved for this long, in milliseconds. */
  quietMs: number;
  out?: NodeJS.WriteStream;
}

export async function deadLetterDepth(probe: QueueProbe, options: SettlingOptions): Promise<number> {
  const depth = await probe.depth(options.deadLetterQueue);
  if (depth === undefined) {
    throw new LoadTestSetupError(
      `queue "${options.deadLetterQueue}" does not exist: start the worker first (npm run fleet), it declares the queues`,
    );
  }
  return depth;
}

/** Waits until every expected order and dead letter is there, or the queue is empty and nothing moves any more. */
export async function waitUntilSettled(
  options: SettlingOptions,
  probe: QueueProbe,
  sql: pg.Pool,
  saleIds: string[],
  expected: { orders: number; deadLetters: number },
  deadLettersBefore: number,
): Promise<boolean> {
  const persisting = startProgress('persisting', expected.orders, { stream: options.out ?? process.stdout });
  const deadline = Date.now() + options.settleTimeoutMs;
  let last = '';
  let quietSince = Date.now();
  try {
    for (;;) {
      const orders = await countOrders(sql, saleIds);
      const deadLetters = (await deadLetterDepth(probe, options)) - deadLettersBefore;
      const queued = (await probe.depth(options.queue)) ?? 0;
      persisting.update(orders, `dead letters ${deadLetters}/${expected.deadLetters}, queued ${queued}`);
      if (orders === expected.orders && deadLetters === expected.deadLetters) return true;
      const now = `${orders}/${deadLetters}/${queued}`;
      if (now !== last) quietSince = Date.now();
      last = now;
      if (queued === 0 && Date.now() - quietSince >= options.quietMs) return true;
      if (Date.now() > deadline) return false;
      await sleep(250);
    }
  } finally {
    persisting.stop();
  }
}
