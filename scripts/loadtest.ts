import { randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import pg from 'pg';
import { PurchasePublisher } from '@flashsale/publisher';
import { type LatencyPercentiles, readOrderStats } from './bench/order-stats.js';
import { startProgress } from './bench/progress.js';
import { publishWorkload, type PublishResult } from './bench/publish-workload.js';
import { QueueProbe } from './bench/queue-probe.js';
import { type HttpLoadTestOptions, runHttpLoadTest } from './loadtest/http-load-test.js';
import { formatHttpSummary } from './loadtest/http-summary.js';
import { checkFleetReady, deadLetterDepth, waitUntilSettled } from './loadtest/settling.js';
import { generateWorkload, type WorkloadExpectation } from './workload.js';

export { LoadTestSetupError } from './loadtest/settling.js';

/**
 * The flash-sale load test: publishes a burst with duplicates and poison to a running fleet, waits until it
 * is persisted, and checks that every unique purchase became exactly one order and every poison message a
 * dead letter.
 */
export interface LoadTestOptions {
  rabbitUrl: string;
  databaseUrl: string;
  queue: string;
  deadLetterQueue: string;
  count: number;
  sales: number;
  users: number;
  duplicateRate: number;
  poisonRate: number;
  /** Messages per second; 0 = as fast as possible. */
  ratePerSecond: number;
  seed: number;
  /** Longest wait for the fleet to persist everything after the last publish, in milliseconds. */
  settleTimeoutMs: number;
  /** The fleet is done when the queue is empty and nothing moved for this long, in milliseconds. */
  quietMs: number;
  /** Where progress and the summary go. */
  out?: NodeJS.WriteStream;
}

export interface LoadTestReport {
  queue: string;
  saleIds: string[];
  expected: WorkloadExpectation;
  publish: PublishResult;
  orders: number;
  duplicatesAbsorbed: number;
  deadLettered: number;
  /** Orders per second from the first publish to the last commit. */
  ordersPerSecond: number;
  latencyMs?: LatencyPercentiles;
  settled: boolean;
  pass: boolean;
}

export function loadTestOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Omit<LoadTestOptions, 'count'> {
  const queue = env.PURCHASE_QUEUE || 'purchase';
  return {
    rabbitUrl: env.RABBITMQ_URL || 'amqp://guest:guest@127.0.0.1:5672',
    databaseUrl: env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/flashsale',
    queue,
    deadLetterQueue: env.DEAD_LETTER_QUEUE || `${queue}.dlq`,
    sales: 3,
    users: 15_000,
    duplicateRate: 0.1,
    poisonRate: 0.01,
    ratePerSecond: 0,
    seed: 1,
    settleTimeoutMs: 120_000,
    quietMs: 3000,
  };
}

export async function runLoadTest(options: LoadTestOptions): Promise<LoadTestReport> {
  const out = options.out ?? process.stdout;
  const saleIds = Array.from({ length: options.sales }, () => randomUUID());
  const workload = generateWorkload({ ...options, saleIds });
  const probe = await QueueProbe.connect(options.rabbitUrl);
  const sql = new pg.Pool({ connectionString: options.databaseUrl, max: 2 });
  const publisher = new PurchasePublisher({ url: options.rabbitUrl, queue: options.queue }).start();
  try {
    const deadLettersBefore = await checkFleetReady(options, probe, sql, saleIds);
    await publisher.waitUntilConnected();
    out.write(
      `load test: ${options.count} messages to "${options.queue}", ${options.sales} sales, ` +
        `${options.users} users, seed ${options.seed}, sales ${saleIds.join(' ')}\n`,
    );
    const publishing = startProgress('publishing', workload.entries.length, { stream: out });
    const publish = await publishWorkload(publisher, workload.entries, {
      ratePerSecond: options.ratePerSecond,
      maxInFlight: 2000,
      onSettled: (settled) => publishing.update(settled),
    });
    publishing.stop();
    const settled = await waitUntilSettled(
      options,
      probe,
      sql,
      saleIds,
      { orders: workload.expected.uniqueValidPairs, deadLetters: workload.expected.poison },
      deadLettersBefore,
    );
    const stats = await readOrderStats(sql, saleIds);
    const deadLettered = (await deadLetterDepth(probe, options)) - deadLettersBefore;
    const validPublished = publish.published - Math.min(publish.published, workload.expected.poison);
    const windowMs =
      stats.lastCommittedAt && stats.firstPurchasedAt
        ? stats.lastCommittedAt.getTime() - stats.firstPurchasedAt.getTime()
        : 0;
    return {
      queue: options.queue,
      saleIds,
      expected: workload.expected,
      publish,
      orders: stats.orders,
      duplicatesAbsorbed: validPublished - stats.orders,
      deadLettered,
      ordersPerSecond: windowMs > 0 ? (stats.orders * 1000) / windowMs : 0,
      latencyMs: stats.latencyMs,
      settled,
      pass:
        publish.failed === 0 &&
        stats.orders === workload.expected.uniqueValidPairs &&
        deadLettered === workload.expected.poison,
    };
  } finally {
    await publisher.close({ timeoutMs: 5000 });
    await sql.end();
    await probe.close();
  }
}

const number = new Intl.NumberFormat('en-US');
const n = (value: number) => number.format(Math.round(value)).padStart(9);
const ms = (value: number) => `${number.format(Math.round(value))} ms`;

export function formatSummary(report: LoadTestReport): string {
  const { expected, publish } = report;
  const publishSeconds = (publish.finishedAt.getTime() - publish.startedAt.getTime()) / 1000;
  const check = (ok: boolean) => (ok ? 'ok' : 'MISMATCH');
  const latency = report.latencyMs
    ? `p50 ${ms(report.latencyMs.p50)}   p95 ${ms(report.latencyMs.p95)}   p99 ${ms(report.latencyMs.p99)}`
    : 'no orders';
  const lines = [
    '',
    `Load test on "${report.queue}"`,
    `  published            ${n(publish.published)}   in ${publishSeconds.toFixed(1)} s` +
      `, ${publish.failed} failed${publish.failures[0] ? ` (${publish.failures[0].message})` : ''}`,
    `  orders confirmed     ${n(report.orders)}   expected ${n(expected.uniqueValidPairs)}   ` +
      check(report.orders === expected.uniqueValidPairs),
    `  duplicates absorbed  ${n(report.duplicatesAbsorbed)}   expected ${n(expected.duplicates)}`,
    `  rejected (DLQ)       ${n(report.deadLettered)}   expected ${n(expected.poison)}   ` +
      check(report.deadLettered === expected.poison),
    `  throughput           ${n(report.ordersPerSecond)}   orders/s, first publish to last commit`,
    `  publish→commit       ${latency}`,
  ];
  if (!report.settled) lines.push(`  (still moving when the wait ended)`);
  lines.push(
    report.pass
      ? `PASS  ${number.format(report.orders)} orders for ${number.format(expected.uniqueValidPairs)} unique ` +
          `purchases, ${number.format(report.deadLettered)} dead letters for ${number.format(expected.poison)} poison`
      : `FAIL  expected ${number.format(expected.uniqueValidPairs)} orders and ${number.format(expected.poison)} ` +
          `dead letters, got ${number.format(report.orders)} and ${number.format(report.deadLettered)}` +
          (publish.failed > 0 ? `, ${publish.failed} publishes failed` : ''),
    '',
  );
  return lines.join('\n');
}

export const wholeNumber = (name: string) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new InvalidArgumentError(`${name} must be a whole number`);
  return parsed;
};
export const ratio = (name: string) => (value: string) => {
  const parsed = Number(value);
  if (!(parsed >= 0 && parsed <= 1)) throw new InvalidArgumentError(`${name} must be between 0 and 1`);
  return parsed;
};

export function loadTestCommand(): Command {
  const defaults = loadTestOptionsFromEnv();
  return new Command('loadtest')
    .description(
      'Publish a flash-sale burst to a running fleet, or send it through the example API (--http), and ' +
        'check what it persisted.\nReads RABBITMQ_URL, DATABASE_URL, PURCHASE_QUEUE and DEAD_LETTER_QUEUE.',
    )
    .option(
      '--count <n>',
      'messages to publish (with --http: requests to send)',
      wholeNumber('--count'),
      20_000,
    )
    .option('--sales <n>', 'sales the purchases spread over', wholeNumber('--sales'), defaults.sales)
    .option('--users <n>', 'distinct users', wholeNumber('--users'), defaults.users)
    .option(
      '--duplicate-rate <r>',
      'share of re-sent purchases',
      ratio('--duplicate-rate'),
      defaults.duplicateRate,
    )
    .option('--poison-rate <r>', 'share of poison messages', ratio('--poison-rate'), defaults.poisonRate)
    .option(
      '--rate <n>',
      'messages (with --http: requests) per second, 0 = as fast as possible',
      wholeNumber('--rate'),
      0,
    )
    .option('--seed <n>', 'seed of the workload', wholeNumber('--seed'), defaults.seed)
    .option(
      '--timeout <s>',
      'longest wait for the fleet to persist, in seconds',
      wholeNumber('--timeout'),
      120,
    )
    .option(
      '--http [url]',
      `send the burst as HTTP requests to the example API instead of publishing it (default ${DEFAULT_API_URL})`,
      httpUrl,
    )
    .option(
      '--connections <n>',
      'with --http: connections, one request in flight each',
      positive('--connections'),
      50,
    )
    .option(
      '--duration <s>',
      'with --http: stop sending after this many seconds, 0 = send all --count requests',
      wholeNumber('--duration'),
      0,
    )
    .option('--wait', "with --http: each request waits for its order's outcome (?wait=true)", false);
}

/** Where the example API listens by default (examples/flash-sale-api, HTTP_PORT 8080). */
export const DEFAULT_API_URL = 'http://127.0.0.1:8080';

function httpUrl(value: string): string {
  if (!URL.canParse(value) || !['http:', 'https:'].includes(new URL(value).protocol)) {
    throw new InvalidArgumentError('--http must be an http:// or https:// URL');
  }
  return value;
}

const positive = (name: string) => (value: string) => {
  const parsed = wholeNumber(name)(value);
  if (parsed < 1) throw new InvalidArgumentError(`${name} must be at least 1`);
  return parsed;
};

export interface LoadTestFlags {
  count: number;
  sales: number;
  users: number;
  duplicateRate: number;
  poisonRate: number;
  rate: number;
  seed: number;
  timeout: number;
  /** `--http` alone is true: the API's default URL. */
  http?: string | true;
  connections: number;
  duration: number;
  wait: boolean;
}

export function loadTestOptionsFromFlags(flags: LoadTestFlags, env = process.env): LoadTestOptions {
  return {
    ...loadTestOptionsFromEnv(env),
    ...flags,
    ratePerSecond: flags.rate,
    settleTimeoutMs: flags.timeout * 1000,
  };
}

export function httpLoadTestOptionsFromFlags(flags: LoadTestFlags, env = process.env): HttpLoadTestOptions {
  return {
    ...loadTestOptionsFromFlags(flags, env),
    url: typeof flags.http === 'string' ? flags.http : DEFAULT_API_URL,
    connections: flags.connections,
    durationS: flags.duration,
    waitForOrder: flags.wait,
  };
}

/** Runs the load test the flags ask for (over AMQP, or through the API with --http) and prints its summary. */
export async function runLoadTestFromFlags(flags: LoadTestFlags, env = process.env): Promise<boolean> {
  if (flags.http) {
    const report = await runHttpLoadTest(httpLoadTestOptionsFromFlags(flags, env));
    process.stdout.write(formatHttpSummary(report));
    return report.pass;
  }
  const report = await runLoadTest(loadTestOptionsFromFlags(flags, env));
  process.stdout.write(formatSummary(report));
  return report.pass;
}

async function main(): Promise<void> {
  const flags = loadTestCommand().parse().opts<LoadTestFlags>();
  process.exitCode = (await runLoadTestFromFlags(flags)) ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((error: Error) => {
    process.stderr.write(`load test failed: ${error.message}\n`);
    process.exitCode = 1;
  });
}
