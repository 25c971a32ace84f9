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

/**
 * Before the burst: the fleet's queue and dead-letter queue must exist and its orders be readable. Returns the
 * dead letters already there, which the run's count starts from.
 */
export async function checkFleetReady(
  options: SettlingOptions & { databaseUrl: string },
  probe: QueueProbe,
  sql: pg.Pool,
  saleIds: readonly string[],
): Promise<number> {
  if ((await probe.depth(options.queue)) === undefined) {
    throw new LoadTestSetupError(
      `queue "${options.queue}" does not exist: start the worker first (npm run fleet)`,
    );
  }
  const deadLettersBefore = await deadLetterDepth(probe, options);
  await countOrders(sql, saleIds).catch((error: Error) => {
    const where = withoutPassword(options.databaseUrl);
    throw new LoadTestSetupError(`cannot read orders at ${where}: ${error.message}`, { cause: error });
  });
  return deadLettersBefore;
}

/** The URL with its password as `***`; one that does not parse is not shown at all (a password may be in it). */
function withoutPassword(url: string): string {
  if (!URL.canParse(url)) return '(unparseable url)';
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
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
