import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { wholeNumber } from './loadtest.js';
import { formatTable, summaryJson } from './bench/report.js';
import {
  type BenchMode,
  type BenchSettings,
  runScenario,
  SCENARIOS,
  type ScenarioName,
  type ScenarioResult,
} from './bench/scenario.js';
import { generateWorkload } from './workload.js';

/**
 * Throughput and latency of the worker beside its references, on one broker, database and workload:
 * the ceiling (ack only), the per-message design (one INSERT + one ack), the worker, a fleet of 3.
 */
interface BenchFlags {
  count: number;
  mode: 'backlog' | 'steady' | 'both';
  rate?: number;
  seconds: number;
  warmup: number;
  prefetch: number;
  poolSize: number;
  scenarios: ScenarioName[];
  timeout: number;
  seed: number;
}

function scenarioList(value: string): ScenarioName[] {
  const names = value.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(name in SCENARIOS));
  if (unknown.length > 0)
    throw new InvalidArgumentError(
      `unknown scenarios ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`,
    );
  return names as ScenarioName[];
}

function parseFlags(): BenchFlags {
  return new Command('bench')
    .description(
      'Benchmark the worker against a bare consumer and a per-message consumer. Reads RABBITMQ_URL, DATABASE_URL.',
    )
    .option('--count <n>', 'messages in the backlog run', wholeNumber('--count'), 30_000)
    .option(
      '--mode <mode>',
      'backlog, steady or both',
      (value) => {
        if (!['backlog', 'steady', 'both'].includes(value))
          throw new InvalidArgumentError('backlog, steady or both');
        return value;
      },
      'both',
    )
    .option(
      '--rate <n>',
      'steady publish rate, msgs/s (default: half the fleet backlog rate, else 1000)',
      wholeNumber('--rate'),
    )
    .option('--seconds <n>', 'length of the steady run, in seconds', wholeNumber('--seconds'), 10)
    .option(
      '--warmup <n>',
      'seconds published at the steady rate and consumed before the measured steady run (0: none)',
      wholeNumber('--warmup'),
      3,
    )
    .option(
      '--prefetch <n>',
      'prefetch of every consumer',
      wholeNumber('--prefetch'),
      Number(process.env.PREFETCH || 1000),
    )
    .option(
      '--pool-size <n>',
      'PostgreSQL connections per process',
      wholeNumber('--pool-size'),
      Number(process.env.DB_POOL_SIZE || 4),
    )
    .option(
      '--scenarios <list>',
      `comma-separated subset of ${Object.keys(SCENARIOS).join(',')}`,
      scenarioList,
      Object.keys(SCENARIOS) as ScenarioName[],
    )
    .option(
      '--timeout <s>',
      'longest wait for one scenario to consume everything, in seconds',
      wholeNumber('--timeout'),
      300,
    )
    .option('--seed <n>', 'seed of the workload', wholeNumber('--seed'), 1)
    .parse()
    .opts<BenchFlags>();
}

function workloadOf(count: number, seed: number) {
  return generateWorkload({
    count,
    sales: 3,
    users: Math.max(100, Math.ceil(count * 0.75)),
    duplicateRate: 0.1,
    poisonRate: 0.01,
    seed,
    saleIds: [randomUUID(), randomUUID(), randomUUID()],
  });
}

async function runMode(
  mode: BenchMode,
  flags: BenchFlags,
  bench: BenchSettings,
  rate: number,
): Promise<ScenarioResult[]> {
  const count = mode === 'backlog' ? flags.count : rate * flags.seconds;
  const workload = workloadOf(count, flags.seed);
  // Its own sales (workloadOf draws fresh ids), so the measured figures never count a warm-up order.
  const warmup =
    mode === 'steady' && flags.warmup > 0 ? workloadOf(rate * flags.warmup, flags.seed + 1) : undefined;
  const results: ScenarioResult[] = [];
  for (const scenario of flags.scenarios) {
    bench.out.write(`\n== ${mode}: ${SCENARIOS[scenario]} ==\n`);
    results.push(await runScenario(scenario, mode, workload, bench, mode === 'steady' ? rate : 0, warmup));
  }
  const { expected } = workload;
  const heading =
    (mode === 'backlog'
      ? `${count} messages waiting in the queue`
      : `${rate} msgs/s for ${flags.seconds} s`) +
    ` (${expected.uniqueValidPairs} orders, ${expected.duplicates} duplicates, ${expected.poison} poison), ` +
    `prefetch ${flags.prefetch}, pool ${flags.poolSize}/process` +
    (warmup ? `; after ${flags.warmup} s at the same rate that warm every consumer up, not measured` : '');
  bench.out.write(formatTable(mode, results, heading));
  return results;
}

async function main(): Promise<number> {
  const flags = parseFlags();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      // exit (not the default signal action) runs the handlers that kill the workers of a running fleet.
      process.stderr.write(
        `bench interrupted: queues fsw.bench.* and databases fsw_bench_* of this run may remain\n`,
      );
      process.exit(130);
    });
  }
  const logFile = join(tmpdir(), `flashsale-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
  const bench: BenchSettings = {
    rabbitUrl: process.env.RABBITMQ_URL || 'amqp://guest:guest@127.0.0.1:5672',
    postgresUrl: process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/flashsale',
    prefetch: flags.prefetch,
    poolSize: flags.poolSize,
    timeoutMs: flags.timeout * 1000,
    log: createWriteStream(logFile),
    out: process.stdout,
  };
  bench.out.write(`bench: ${cpus().length} cores, Node ${process.version}; consumer logs in ${logFile}\n`);
  const byMode: Partial<Record<BenchMode, ScenarioResult[]>> = {};
  if (flags.mode !== 'steady') byMode.backlog = await runMode('backlog', flags, bench, 0);
  if (flags.mode !== 'backlog') {
    const fleetBacklog = byMode.backlog?.find((result) => result.scenario === 'fleet' && result.complete);
    const rate =
      flags.rate ?? (fleetBacklog ? Math.max(1, Math.round(fleetBacklog.msgsPerSecond / 2)) : 1000);
    byMode.steady = await runMode('steady', flags, bench, rate);
  }
  bench.log.end();
  const { count, prefetch, poolSize, seconds, warmup, seed } = flags;
  const run = { count, prefetch, poolSize, steadySeconds: seconds, steadyWarmupSeconds: warmup, seed };
  process.stdout.write(`${summaryJson({ ...run, cores: cpus().length }, byMode)}\n`);
  const complete = Object.values(byMode).every((results) => results.every((result) => result.complete));
  return complete ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
