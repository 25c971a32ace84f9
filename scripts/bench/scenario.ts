import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import pg from 'pg';
import { purchaseTopology } from '../../src/broker/topology.js';
import { parseSettings } from '../../src/config/settings.js';
import { applyMigrations } from '../../src/tools/migrate/migrate.js';
import { PurchasePublisher } from '@flashsale/publisher';
import type { Workload } from '../workload.js';
import {
  type BenchConsumers,
  ceilingConsumer,
  type CeilingDone,
  type ConsumerSettings,
  perMessageConsumer,
  workerFleet,
} from './consumers.js';
import { type CpuPerMessage, ScenarioCpu, type ServerPids } from './cpu-per-message.js';
import { countOrders, type LatencyPercentiles, readOrderStats } from './order-stats.js';
import { startProgress } from './progress.js';
import { publishWorkload } from './publish-workload.js';
import { QueueProbe } from './queue-probe.js';
import { PeakRssSampler } from './rss.js';
import { postgresProcesses, rabbitmqProcesses } from './server-processes.js';

export const SCENARIOS = {
  ceiling: 'ceiling: ack only, no DB',
  'per-message': 'per-message INSERT + ack',
  worker: 'worker, 1 process',
  fleet: 'worker fleet, 3 processes',
} as const;
export type ScenarioName = keyof typeof SCENARIOS;
export type BenchMode = 'backlog' | 'steady';

export interface BenchSettings {
  rabbitUrl: string;
  /** Any database URL on the server; each scenario creates its own database beside it. */
  postgresUrl: string;
  prefetch: number;
  poolSize: number;
  /** Longest wait for one scenario to consume everything, in milliseconds. */
  timeoutMs: number;
  log: NodeJS.WritableStream;
  out: NodeJS.WriteStream;
}

export interface ScenarioResult {
  scenario: ScenarioName;
  mode: BenchMode;
  messages: number;
  orders: number;
  /**
   * Backlog: messages consumed per second between the 10th and the 90th percent settled (committed, or acked
   * for the ceiling): the pace once every consumer runs, without start-up and tail. Steady: messages over the
   * time from the first publish to the last settled, at most about the offered rate.
   */
  msgsPerSecond: number;
  ordersPerSecond: number;
  /** Backlog: from starting the consumers to the last commit (or ack), start-up included, in seconds. */
  drainSeconds?: number;
  /** Publish rate offered in steady mode, messages per second. */
  offeredRate?: number;
  latencyMs?: LatencyPercentiles;
  peakRssMb: number[];
  /** CPU per message from the first to the last message settled; undefined if timed out or not readable. */
  cpu?: CpuPerMessage;
  /** Everything consumed and counted within the timeout. */
  complete: boolean;
}

interface BenchDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A database of its own for one scenario, migrated, beside the one `serverUrl` names (which need not exist). */
export async function createDatabase(serverUrl: string, scenario: string): Promise<BenchDatabase> {
  const url = new URL(serverUrl);
  const name = `fsw_bench_${scenario.replace(/\W/g, '_')}_${randomBytes(4).toString('hex')}`;
  url.pathname = `/${name}`;
  await applyMigrations(url.toString());
  return {
    url: url.toString(),
    drop: async () => {
      // The named database may not exist (the bench only needs its server): drop from the maintenance one.
      const maintenance = new URL(serverUrl);
      maintenance.pathname = '/postgres';
      const admin = new pg.Client({ connectionString: maintenance.toString() });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => admin.end());
    },
  };
}

/** The worker's own topology (quorum queue, delivery limit, dead-lettering), so every scenario pays the same. */
async function declareTopology(rabbitUrl: string, queue: string): Promise<() => Promise<void>> {
  const declarations = purchaseTopology(parseSettings({ PURCHASE_QUEUE: queue }));
  const connection = await amqp.connect(rabbitUrl);
  const channel = await connection.createChannel();
  for (const declaration of declarations) await channel.assertQueue(declaration.name, declaration.options);
  await connection.close();
  return async () => {
    const cleanup = await amqp.connect(rabbitUrl);
    const cleanupChannel = await cleanup.createChannel();
    for (const declaration of declarations) await cleanupChannel.deleteQueue(declaration.name);
    await cleanup.close();
  };
}

function startConsumers(
  scenario: ScenarioName,
  settings: ConsumerSettings,
  messages: number,
  warmupMessages: number,
): BenchConsumers {
  switch (scenario) {
    case 'ceiling':
      return ceilingConsumer(settings, warmupMessages + messages, warmupMessages);
    case 'per-message':
      return perMessageConsumer(settings);
    case 'worker':
      return workerFleet(settings, 1);
    case 'fleet':
      return workerFleet(settings, 3);
  }
}

/**
 * One scenario on its own queue and database. Backlog: the whole workload waits in the queue before the
 * consumers start. Steady: consumers are ready first, then `warmup` (when given) is published at
 * `ratePerSecond` and consumed, unmeasured, so that every consumer runs warm; then the workload, measured.
 */
export async function runScenario(
  scenario: ScenarioName,
  mode: BenchMode,
  workload: Workload,
  bench: BenchSettings,
  ratePerSecond = 0,
  warmup?: Workload,
): Promise<ScenarioResult> {
  const queue = `fsw.bench.${scenario}.${randomBytes(4).toString('hex')}`;
  const deleteQueues = await declareTopology(bench.rabbitUrl, queue);
  const database = scenario === 'ceiling' ? undefined : await createDatabase(bench.postgresUrl, scenario);
  const sql = database ? new pg.Pool({ connectionString: database.url, max: 2 }) : undefined;
  const probe = await QueueProbe.connect(bench.rabbitUrl);
  const publisher = new PurchasePublisher({ url: bench.rabbitUrl, queue, maxPendingPublishes: 5000 }).start();
  const settings: ConsumerSettings = { ...bench, queue, databaseUrl: database?.url };
  const messages = workload.entries.length;
  let consumers: BenchConsumers | undefined;
  let cpu: ScenarioCpu | undefined;
  try {
    const publish = async (label: string, entries = workload.entries) => {
      const progress = startProgress(label, entries.length, { stream: bench.out });
      const result = await publishWorkload(publisher, entries, {
        ratePerSecond,
        maxInFlight: 2000,
        onSettled: (settled) => progress.update(settled),
      });
      progress.stop();
      if (result.failed > 0)
        throw new Error(`${result.failed} publishes failed: ${result.failures[0]?.message}`);
      return result.startedAt.getTime();
    };
    if (mode === 'backlog') await publish(`${scenario}: loading`);
    const servers: ServerPids = {
      postgres: sql && database ? ((await postgresProcesses(sql, database.url)) ?? null) : undefined,
      rabbitmq: rabbitmqProcesses(bench.rabbitUrl) ?? null,
    };
    const consumersStartedAt = Date.now();
    const warmupMessages = mode === 'steady' && warmup ? warmup.entries.length : 0;
    consumers = startConsumers(scenario, settings, messages, warmupMessages);
    const rss = new PeakRssSampler(() => consumers?.pids() ?? []);
    cpu = new ScenarioCpu(() => consumers?.pids() ?? [], servers);
    let publishStartedAt = 0;
    let deadLettersBefore = 0;
    if (mode === 'steady') {
      await consumers.ready(60_000);
      if (warmup && warmupMessages > 0) {
        await publish(`${scenario}: warming up`, warmup.entries);
        const warm = { probe, queue, sql, consumers: { ...consumers, done: undefined } };
        if (!(await waitUntilConsumed(scenario, warmup, bench, warm)))
          throw new Error(`${scenario} did not consume the warm-up within ${bench.timeoutMs / 1000} s`);
        deadLettersBefore = (await probe.depth(`${queue}.dlq`)) ?? 0;
      }
      publishStartedAt = await publish(`${scenario}: publishing`);
    }
    const complete = await waitUntilConsumed(scenario, workload, bench, {
      probe,
      queue,
      sql,
      consumers,
      deadLettersBefore,
    });
    const peakRssMb = await rss.finish();
    cpu.finish();
    const figures =
      consumers.done && complete
        ? ceilingFigures(await consumers.done)
        : await orderFigures(sql, workload, messages);
    const { firstSettledAt = 0, lastSettledAt = 0, ...measured } = figures;
    if (mode === 'steady' && lastSettledAt > publishStartedAt) {
      // Steady: the pace achieved against the pace offered, from the first publish to the last settled.
      const seconds = (lastSettledAt - publishStartedAt) / 1000;
      Object.assign(measured, {
        msgsPerSecond: messages / seconds,
        ordersPerSecond: measured.orders / seconds,
      });
    }
    return {
      scenario,
      mode,
      messages,
      ...measured,
      drainSeconds:
        mode === 'backlog' && lastSettledAt ? (lastSettledAt - consumersStartedAt) / 1000 : undefined,
      peakRssMb,
      // Divided by every message of the scenario: only right when all of them were settled.
      cpu: complete ? cpu.perMessage({ fromMs: firstSettledAt, toMs: lastSettledAt }, messages) : undefined,
      complete,
      offeredRate: ratePerSecond || undefined,
    };
  } finally {
    cpu?.finish();
    await consumers?.stop();
    await publisher.close({ timeoutMs: 5000 });
    await probe.close();
    await sql?.end();
    await deleteQueues();
    await database?.drop();
  }
}

async function waitUntilConsumed(
  scenario: ScenarioName,
  workload: Workload,
  bench: BenchSettings,
  {
    probe,
    queue,
    sql,
    consumers,
    deadLettersBefore = 0,
  }: {
    probe: QueueProbe;
    queue: string;
    sql?: pg.Pool;
    consumers: BenchConsumers;
    /** Dead letters of an earlier phase (the warm-up) already in the DLQ. */
    deadLettersBefore?: number;
  },
): Promise<boolean> {
  const { expected, saleIds } = workload;
  const progress = startProgress(`${scenario}: consuming`, expected.messages, { stream: bench.out });
  let finished = false;
  void consumers.done?.then(() => (finished = true));
  const deadline = Date.now() + bench.timeoutMs;
  try {
    while (Date.now() < deadline) {
      const queued = (await probe.depth(queue)) ?? 0;
      const deadLetters = (await probe.depth(`${queue}.dlq`)) ?? 0;
      const orders = sql ? await countOrders(sql, saleIds) : 0;
      progress.update(expected.messages - queued, sql ? `orders ${orders}/${expected.uniqueValidPairs}` : '');
      const consumed = consumers.done
        ? finished
        : sql
          ? orders === expected.uniqueValidPairs && deadLetters === deadLettersBefore + expected.poison
          : queued === 0; // the ceiling's warm-up: it acks at once, and skips these in its figures
      if (consumed) return true;
      await sleep(100);
    }
    return false;
  } finally {
    progress.stop();
  }
}

// Between the 10th and the 90th percent settled lie 80 % of the messages.
const STEADY_SHARE = 0.8;

function ceilingFigures(done: CeilingDone) {
  const windowMs = Math.max(1, done.steadyWindow.toMs - done.steadyWindow.fromMs);
  return {
    orders: 0,
    msgsPerSecond: (STEADY_SHARE * done.acked * 1000) / windowMs,
    ordersPerSecond: 0,
    latencyMs: done.latencyMs,
    firstSettledAt: done.firstAckAt,
    lastSettledAt: done.lastAckAt,
  };
}

async function orderFigures(sql: pg.Pool | undefined, workload: Workload, messages: number) {
  const stats = sql ? await readOrderStats(sql, workload.saleIds) : undefined;
  const window = stats?.steadyWindow;
  const windowMs = window ? Math.max(1, window.to.getTime() - window.from.getTime()) : 0;
  return {
    orders: stats?.orders ?? 0,
    msgsPerSecond: windowMs ? (STEADY_SHARE * messages * 1000) / windowMs : 0,
    ordersPerSecond: windowMs && stats ? (STEADY_SHARE * stats.orders * 1000) / windowMs : 0,
    latencyMs: stats?.latencyMs,
    firstSettledAt: stats?.firstCommittedAt?.getTime(),
    lastSettledAt: stats?.lastCommittedAt?.getTime(),
  };
}
