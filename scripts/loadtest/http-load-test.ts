import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { type LatencyPercentiles, readOrderStats } from '../bench/order-stats.js';
import { startProgress } from '../bench/progress.js';
import { QueueProbe } from '../bench/queue-probe.js';
import { generateWorkload, type WorkloadOptions } from '../workload.js';
import { driveHttp, type HttpDriveResult, type HttpLatency, SENT_UNANSWERED } from './http-driver.js';
import { type HttpRequest, httpRequests } from './http-requests.js';
import {
  checkFleetReady,
  deadLetterDepth,
  LoadTestSetupError,
  type SettlingOptions,
  waitUntilSettled,
} from './settling.js';

/**
 * The flash-sale load test through the example API: sends the burst as HTTP requests, then checks every
 * answer against the orders the fleet wrote. A purchase the API accepted (2xx) must be exactly one order; an
 * order nobody was told was accepted is allowed only for a purchase whose answer never came or was a 5xx
 * (its publish may have reached the broker anyway); poison must be refused with its 4xx and never reach the
 * broker.
 */
export interface HttpLoadTestOptions extends SettlingOptions, Omit<WorkloadOptions, 'saleIds'> {
  /** Base URL of the example API, e.g. http://127.0.0.1:8080. */
  url: string;
  rabbitUrl: string;
  databaseUrl: string;
  connections: number;
  /** Stop sending after this many seconds; 0 sends all `count` requests. */
  durationS: number;
  /** Requests per second; 0 = as fast as the API answers. */
  ratePerSecond: number;
  /** Each request waits for its order's outcome (`?wait=true`): 201 confirmed, 200 duplicate. */
  waitForOrder: boolean;
}

export interface HttpLoadTestReport {
  url: string;
  queue: string;
  saleIds: string[];
  http: {
    sent: number;
    answered: number;
    /** Sent and never answered: timed out, or cut off when the duration ended. */
    unanswered: number;
    /** Unanswered requests a run may end with: with a duration, the one in flight on each connection. */
    unansweredAllowed: number;
    statusCounts: Record<string, number>;
    latencyMs: HttpLatency;
    errors: number;
    seconds: number;
    requestsPerSecond: number;
  };
  purchases: {
    sent: number;
    accepted: number;
    /** Distinct (sale, user) pairs among the accepted purchases: the orders the run must produce. */
    acceptedPairs: number;
    /** Answers other than 2xx to valid purchases, by status. */
    notAccepted: Record<string, number>;
    unanswered: number;
  };
  poison: { sent: number; refusedAsExpected: number; otherwise: Record<string, number>; unanswered: number };
  orders: number;
  /** Accepted pairs without an order, and orders of pairs never accepted nor left in doubt (a few of each). */
  missing: { count: number; examples: string[] };
  unexpected: { count: number; examples: string[] };
  deadLettered: number;
  /** API stamp (the purchase's timestamp) → commit, in milliseconds. */
  commitLatencyMs?: LatencyPercentiles;
  ordersPerSecond: number;
  settled: boolean;
  pass: boolean;
}

export const pairKey = (saleId: string, userId: string) => `${saleId} ${userId}`;
const isSuccess = (status: number) => status >= 200 && status < 300;
const total = (counts: Record<string, number>) =>
  Object.values(counts).reduce((sum, count) => sum + count, 0);

export interface Answers {
  accepted: Set<string>;
  /** Pairs whose publish may or may not have happened: no answer, or a 5xx. */
  inDoubt: Set<string>;
  purchasesSent: number;
  acceptedRequests: number;
  notAccepted: Record<string, number>;
  unansweredPurchases: number;
  poison: HttpLoadTestReport['poison'];
}

/** What each answer says about the orders the fleet must hold. */
export function readAnswers(requests: readonly HttpRequest[], drive: HttpDriveResult): Answers {
  const answers: Answers = {
    accepted: new Set(),
    inDoubt: new Set(),
    purchasesSent: 0,
    acceptedRequests: 0,
    notAccepted: {},
    unansweredPurchases: 0,
    poison: { sent: 0, refusedAsExpected: 0, otherwise: {}, unanswered: 0 },
  };
  const bump = (counts: Record<string, number>, status: number) => {
    counts[String(status)] = (counts[String(status)] ?? 0) + 1;
  };
  for (const [index, request] of requests.entries()) {
    const status = drive.statuses[index] ?? 0;
    if (status === 0) continue; // not sent: the duration ended first
    if (request.kind === 'poison') {
      answers.poison.sent += 1;
      if (status === request.expectedStatus) answers.poison.refusedAsExpected += 1;
      else if (status === SENT_UNANSWERED) answers.poison.unanswered += 1;
      else bump(answers.poison.otherwise, status);
      continue;
    }
    answers.purchasesSent += 1;
    const key = pairKey(request.saleId, request.userId);
    if (isSuccess(status)) {
      answers.acceptedRequests += 1;
      answers.accepted.add(key);
      continue;
    }
    if (status === SENT_UNANSWERED) answers.unansweredPurchases += 1;
    else bump(answers.notAccepted, status);
    if (status === SENT_UNANSWERED || status >= 500) answers.inDoubt.add(key);
  }
  return answers;
}

/**
 * Accepted pairs without an order (lost), and orders of pairs never accepted nor in doubt (made up, or made
 * from a purchase the API refused). Keys are `<saleId> <userId>`.
 */
export function compareWithOrders(
  answers: Pick<Answers, 'accepted' | 'inDoubt'>,
  orders: ReadonlySet<string>,
): { missing: string[]; unexpected: string[] } {
  return {
    missing: [...answers.accepted].filter((key) => !orders.has(key)),
    unexpected: [...orders].filter((key) => !answers.accepted.has(key) && !answers.inDoubt.has(key)),
  };
}

async function orderPairs(sql: pg.Pool, saleIds: readonly string[]): Promise<Set<string>> {
  const result = await sql.query<{ sale_id: string; user_id: string }>(
    'SELECT sale_id::text, user_id FROM orders WHERE sale_id = ANY($1::uuid[])',
    [saleIds],
  );
  return new Set(result.rows.map((row) => pairKey(row.sale_id, row.user_id)));
}

async function checkApiHealthy(url: string): Promise<void> {
  const health = new URL('/health', url);
  const response = await fetch(health, { signal: AbortSignal.timeout(5000) }).catch((error: Error) => {
    throw new LoadTestSetupError(`the API at ${health.href} is unreachable: ${error.message}`, {
      cause: error,
    });
  });
  if (!response.ok) {
    throw new LoadTestSetupError(
      `the API at ${health.href} is not healthy: ${response.status} ${await response.text()}`,
    );
  }
}

export async function runHttpLoadTest(options: HttpLoadTestOptions): Promise<HttpLoadTestReport> {
  const out = options.out ?? process.stdout;
  const saleIds = Array.from({ length: options.sales }, () => randomUUID());
  const requests = httpRequests(generateWorkload({ ...options, saleIds }), {
    waitForOrder: options.waitForOrder,
  });
  const probe = await QueueProbe.connect(options.rabbitUrl);
  const sql = new pg.Pool({ connectionString: options.databaseUrl, max: 2 });
  try {
    const deadLettersBefore = await checkFleetReady(options, probe, sql, saleIds);
    await checkApiHealthy(options.url);
    out.write(
      `load test: ${requests.length} requests to ${options.url} over ${options.connections} connections` +
        `${options.durationS > 0 ? ` for at most ${options.durationS} s` : ''}, ${options.sales} sales, ` +
        `${options.users} users, seed ${options.seed}, sales ${saleIds.join(' ')}\n`,
    );
    const sending = startProgress('requests', requests.length, { stream: out });
    const drive = await driveHttp(requests, {
      url: options.url,
      connections: options.connections,
      durationS: options.durationS,
      ratePerSecond: options.ratePerSecond,
      // Past the API's own wait for an order (ORDER_WAIT_TIMEOUT_MS, 10 s by default), so that its 504 arrives.
      timeoutS: options.waitForOrder ? 30 : 10,
      onAnswered: (answered) => sending.update(answered),
    });
    sending.stop();
    const answers = readAnswers(requests, drive);
    const settled = await waitUntilSettled(
      options,
      probe,
      sql,
      saleIds,
      { orders: answers.accepted.size, deadLetters: 0 },
      deadLettersBefore,
    );
    const orders = await orderPairs(sql, saleIds);
    const stats = await readOrderStats(sql, saleIds);
    const deadLettered = (await deadLetterDepth(probe, options)) - deadLettersBefore;
    return report(options, saleIds, drive, answers, orders, stats, deadLettered, settled);
  } finally {
    await sql.end();
    await probe.close();
  }
}

function report(
  options: HttpLoadTestOptions,
  saleIds: string[],
  drive: HttpDriveResult,
  answers: Answers,
  orders: Set<string>,
  stats: Awaited<ReturnType<typeof readOrderStats>>,
  deadLettered: number,
  settled: boolean,
): HttpLoadTestReport {
  const { missing, unexpected } = compareWithOrders(answers, orders);
  const seconds = (drive.finishedAt.getTime() - drive.startedAt.getTime()) / 1000;
  const windowMs =
    stats.lastCommittedAt && stats.firstPurchasedAt
      ? stats.lastCommittedAt.getTime() - stats.firstPurchasedAt.getTime()
      : 0;
  const unanswered = drive.sent - drive.answered;
  // A duration ends with the request in flight on each connection cut off: those go unanswered, in doubt.
  const unansweredAllowed = options.durationS > 0 ? Math.min(options.connections, drive.sent) : 0;
  return {
    url: options.url,
    queue: options.queue,
    saleIds,
    http: {
      sent: drive.sent,
      answered: drive.answered,
      unanswered,
      unansweredAllowed,
      statusCounts: drive.statusCounts,
      latencyMs: drive.latencyMs,
      errors: drive.errors,
      seconds,
      requestsPerSecond: seconds > 0 ? drive.answered / seconds : 0,
    },
    purchases: {
      sent: answers.purchasesSent,
      accepted: answers.acceptedRequests,
      acceptedPairs: answers.accepted.size,
      notAccepted: answers.notAccepted,
      unanswered: answers.unansweredPurchases,
    },
    poison: answers.poison,
    orders: orders.size,
    missing: { count: missing.length, examples: missing.slice(0, 3) },
    unexpected: { count: unexpected.length, examples: unexpected.slice(0, 3) },
    deadLettered,
    commitLatencyMs: stats.latencyMs,
    ordersPerSecond: windowMs > 0 ? (stats.orders * 1000) / windowMs : 0,
    settled,
    pass:
      drive.sent > 0 &&
      drive.errors === 0 &&
      unanswered <= unansweredAllowed &&
      total(answers.notAccepted) === 0 &&
      total(answers.poison.otherwise) === 0 &&
      missing.length === 0 &&
      unexpected.length === 0 &&
      deadLettered === 0,
  };
}
