import { afterAll, describe, expect, it } from '@jest/globals';
import { FaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/harness.js';
import { PrivateRabbitMq } from '../support/private-rabbitmq.js';
import type { WorkerExit, WorkerProcess } from '../support/worker-process.js';
import { type ChaosFigures, collectFigures, table } from './chaos-figures.js';
import {
  CHAOS_QUEUES,
  CHAOS_SEED,
  CHAOS_WORKER_SETTINGS,
  ChaosFleet,
  ChaosRun,
  runChaosScenario,
} from './chaos-fleet.js';
import { PurchaseChannel } from './purchase-channel.js';
import { type PurchaseMix, purchaseMix } from './purchase-mix.js';
import { ReadinessSampler } from './readiness-samples.js';
import { SteadySale } from './steady-sale.js';

const CHAOS_PURCHASES = Number(process.env.CHAOS_PURCHASES ?? 50_000);
/** Purchases per second of every round's sale: 100 at CI size, 625 at full size. */
const SALE_PER_SECOND = Math.max(50, Math.round(CHAOS_PURCHASES / 80));
/** The black hole lasts 15 s at CI size and up to 45 s at full size; latency and bandwidth a third of that. */
const BLACKHOLE_MS = Math.min(45_000, Math.max(15_000, CHAOS_PURCHASES * 0.9));
const OTHER_FAULT_MS = Math.round(BLACKHOLE_MS / 3);
/** Each round's sale lasts its fault and this long before and after it, so it runs on after the heal. */
const SALE_MARGIN_MS = 2000;
const ADDED_LATENCY_MS = 200;
const SLOW_BYTES_PER_SECOND = 20_000;
const FLEET = ['net-1', 'net-2', 'net-3'];
/** What a lost connection can bring back: every unacked delivery of the fleet. */
const FLEET_UNACKED_WINDOW = FLEET.length * Number(CHAOS_WORKER_SETTINGS.PREFETCH);
/**
 * How long after a black hole begins a worker must answer 503: the database path is probed with a write on
 * every /ready (1 s timeout, DB_QUERY_TIMEOUT_MS for the batches), the broker path is found dead by AMQP
 * heartbeats (5 s, two missed). Samples before it are not judged.
 */
const DETECTION_BOUND_MS = { database: 5000, broker: 18_000 };
/** The broker path's black hole outlasts its detection bound, so that the samples after it are judged. */
const BROKER_BLACKHOLE_EXTRA_MS = 6000;
/** How long after the heal every worker must be ready again. */
const RECOVERY_TIMEOUT_MS = 30_000;
const PROGRESS_TIMEOUT_MS = 60_000;
const SETTLE_TIMEOUT_MS = 120_000;

/** Settings that bound how long a worker can hang on a broken path; the AMQP heartbeat is the worker's 5 s. */
const NETWORK_FAULT_SETTINGS = {
  DB_CONNECT_TIMEOUT_MS: '2000',
  DB_STATEMENT_TIMEOUT_MS: '2000',
  DB_QUERY_TIMEOUT_MS: '3000',
};

type Path = 'database' | 'broker';

interface Fault {
  name: string;
  path: Path;
  durationMs: number;
  apply(proxy: FaultProxy): void;
}

const FAULT_KINDS: Omit<Fault, 'path'>[] = [
  { name: 'black hole', durationMs: BLACKHOLE_MS, apply: (proxy) => proxy.blackhole() },
  {
    name: `latency ${ADDED_LATENCY_MS} ms`,
    durationMs: OTHER_FAULT_MS,
    apply: (proxy) => proxy.latency(ADDED_LATENCY_MS),
  },
  { name: 'connection reset', durationMs: 0, apply: (proxy) => proxy.reset() },
  {
    name: `bandwidth ${SLOW_BYTES_PER_SECOND / 1000} kB/s`,
    durationMs: OTHER_FAULT_MS,
    apply: (proxy) => proxy.bandwidth(SLOW_BYTES_PER_SECOND),
  },
];
const FAULTS: Fault[] = (['database', 'broker'] as const).flatMap((path) =>
  FAULT_KINDS.map((kind) => ({
    ...kind,
    path,
    durationMs:
      path === 'broker' && kind.name === 'black hole'
        ? kind.durationMs + BROKER_BLACKHOLE_EXTRA_MS
        : kind.durationMs,
  })),
);

interface Round {
  fault: Fault;
  mix: PurchaseMix;
  sale?: SteadySale;
  faultMs: number;
  healedMs: number;
  ordersAtFault: number;
  ordersAtHeal: number;
  /** Per worker: from the fault to its first 503 (undefined: it stayed ready). */
  detectionMs: (number | undefined)[];
  /** Per worker: samples from its detection (at the latest its bound) to the heal that were not 503. */
  readyInHole: number[];
  /** Per worker: how many samples that was judged on. */
  judgedSamples: number[];
  /** From the heal until every worker answered /ready with 200. */
  recoveryMs: number;
  /** From the sale's last confirm until the round was settled. */
  settleMs: number;
  reasons: string[];
  figures?: ChaosFigures;
}

const chaos = new ChaosRun<PrivateRabbitMq>();
const rounds: Round[] = [];
const proxies: Partial<Record<Path, FaultProxy>> = {};
let sampler: ReadinessSampler | undefined;
let finalExits = new Map<string, WorkerExit>();

const elapsedSince = (startMs: number) => Date.now() - startMs;

/** A gauge of the worker's /metrics. */
async function gaugeOf(worker: WorkerProcess, name: string): Promise<number> {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(await worker.metrics());
  return Number(match?.[1] ?? NaN);
}

/**
 * Waits until the round is settled: the queue empty, an order for every unique valid purchase, a dead letter
 * for every poison message, nothing unacked on any worker, every audit buffer empty. A round that never gets
 * there fails with the state it was left in.
 */
async function settleRound(fleet: ChaosFleet, mix: PurchaseMix): Promise<number> {
  const startedMs = Date.now();
  const workers = FLEET.map((workerId) => fleet.worker(workerId));
  let state = 'not read yet';
  try {
    await waitFor(
      'the round to settle',
      async () => {
        const [ready, deadLetters, orders] = await Promise.all([
          chaos.channel!.depth(CHAOS_QUEUES.purchase),
          chaos.channel!.depth(CHAOS_QUEUES.deadLetter),
          chaos.orderCount(),
        ]);
        const inFlight = await Promise.all(
          workers.map((worker) => gaugeOf(worker, 'flashsale_messages_in_flight')),
        );
        const audit = await Promise.all(
          workers.map((worker) => gaugeOf(worker, 'flashsale_audit_buffer_size')),
        );
        state = `ready ${ready}, dead letters ${deadLetters}/${mix.poisonBodies.size}, orders ${orders}/${mix.timestampsByPair.size}, in flight ${inFlight.join('/')}, audit buffered ${audit.join('/')}`;
        return (
          ready === 0 &&
          deadLetters >= mix.poisonBodies.size &&
          orders >= mix.timestampsByPair.size &&
          [...inFlight, ...audit].every((count) => count === 0)
        );
      },
      { timeoutMs: SETTLE_TIMEOUT_MS, intervalMs: 100 },
    );
  } catch (error) {
    throw new Error(`the round did not settle: ${state}`, { cause: error });
  }
  return Date.now() - startedMs;
}

/** Starts the fleet with both of its paths through a fault proxy; the test's own clients go direct. */
async function startFleet(): Promise<ChaosFleet> {
  const { broker, database } = await chaos.startServers(() => PrivateRabbitMq.start());
  proxies.database = await FaultProxy.start('127.0.0.1', database.server.port);
  proxies.broker = await FaultProxy.start('127.0.0.1', broker.port);
  const fleet = new ChaosFleet({
    ...NETWORK_FAULT_SETTINGS,
    RABBITMQ_URL: `amqp://guest:guest@${proxies.broker.address}`,
    DATABASE_URL: `postgresql://postgres@${proxies.database.address}/flashsale`,
    PURCHASE_QUEUE: CHAOS_QUEUES.purchase,
  });
  chaos.fleet = fleet;
  await Promise.all(FLEET.map((workerId) => fleet.start(workerId)));
  chaos.channel = await PurchaseChannel.open(broker.url);
  return fleet;
}

async function runRound(fleet: ChaosFleet, fault: Fault, index: number): Promise<void> {
  const total = Math.round((SALE_PER_SECOND * (fault.durationMs + 2 * SALE_MARGIN_MS)) / 1000);
  const round: Round = {
    fault,
    mix: purchaseMix(total, CHAOS_SEED + index),
    faultMs: 0,
    healedMs: 0,
    ordersAtFault: 0,
    ordersAtHeal: 0,
    detectionMs: [],
    readyInHole: [],
    judgedSamples: [],
    recoveryMs: 0,
    settleMs: 0,
    reasons: [],
  };
  rounds.push(round);
  const proxy = proxies[fault.path]!;
  round.sale = SteadySale.start(chaos.channel!, CHAOS_QUEUES.purchase, round.mix.bodies, SALE_PER_SECOND);
  round.ordersAtFault = await chaos.ordersGrownBeforeFault(0, total, fault.name, PROGRESS_TIMEOUT_MS);

  round.faultMs = Date.now();
  fault.apply(proxy);
  // The fault's own length, not a wait for a condition.
  if (fault.durationMs > 0) await new Promise((resolve) => setTimeout(resolve, fault.durationMs));
  round.ordersAtHeal = await chaos.orderCount();
  proxy.heal();
  round.healedMs = Date.now();
  await fleet.waitAllReady(RECOVERY_TIMEOUT_MS);
  round.recoveryMs = elapsedSince(round.healedMs);

  await round.sale.done();
  round.settleMs = await settleRound(fleet, round.mix);
  const bound = DETECTION_BOUND_MS[fault.path];
  round.detectionMs = FLEET.map((worker) =>
    sampler!.firstAfter(worker, round.faultMs, (taken) => taken.status !== 200),
  );
  // Judged: every sample from the worker's first non-200 (or the bound, if that came later) to the heal.
  round.readyInHole = FLEET.map((worker, index) => {
    const judgedFromMs = round.faultMs + Math.min(bound, round.detectionMs[index] ?? bound);
    return sampler!.between(worker, judgedFromMs, round.healedMs).filter((taken) => taken.status !== 503)
      .length;
  });
  round.judgedSamples = FLEET.map((worker, index) => {
    const judgedFromMs = round.faultMs + Math.min(bound, round.detectionMs[index] ?? bound);
    return sampler!.between(worker, judgedFromMs, round.healedMs).length;
  });
  round.reasons = [
    ...new Set(
      FLEET.flatMap((worker) =>
        sampler!
          .between(worker, round.faultMs, round.healedMs + round.recoveryMs)
          .filter((taken) => taken.status !== 200)
          .flatMap((taken) => taken.reasons),
      ),
    ),
  ];
  round.figures = await collectFigures(chaos.database!.sql, chaos.channel!, CHAOS_QUEUES, round.mix);
  // The next round's figures are its own.
  await chaos.database!.sql.query('TRUNCATE orders, audit_logs');
}

async function runScenario(): Promise<void> {
  const startedMs = Date.now();
  const fleet = await startFleet();
  chaos.timings.push(['servers and fleet up (ms)', elapsedSince(startedMs)]);
  sampler = new ReadinessSampler(FLEET.map((workerId) => fleet.worker(workerId)));
  sampler.start();
  for (const [index, fault] of FAULTS.entries()) await runRound(fleet, fault, index);
  await sampler.stop();
  chaos.timings.push(['all rounds (ms)', elapsedSince(startedMs)]);
  finalExits = await fleet.stopAll();
}

const worst = (values: (number | undefined)[]) =>
  values.some((value) => value === undefined) ? 'none' : `${Math.max(...(values as number[]))} ms`;

function figureLine(round: Round): string {
  const { figures, fault } = round;
  const redelivered = figures ? (figures.auditByEvent.ORDER_DUPLICATE ?? 0) - round.mix.duplicates : NaN;
  return (
    `FIGURE ${fault.path} ${fault.name} (${fault.durationMs} ms): detection ${worst(round.detectionMs)}, ` +
    `not 503 in the fault ${round.readyInHole.join('/')} of ${round.judgedSamples.join('/')}, recovery ${round.recoveryMs} ms, settled ${round.settleMs} ms, ` +
    `orders ${figures?.orders}/${figures?.expectedOrders}, duplicates ${(figures?.orders ?? 0) - (figures?.distinctOrderPairs ?? 0)}, ` +
    `redelivered committed ${redelivered}, DLQ ${figures?.deadLettered} (poison ${figures?.poisonPublished}, valid ${figures?.deadLetteredValid}); ` +
    `orders at fault/heal ${round.ordersAtFault}/${round.ordersAtHeal}; /ready said ${JSON.stringify(round.reasons.slice(0, 2))}`
  );
}

function report(): void {
  const lines = [
    table(`network faults: ${FAULTS.length} rounds at ${SALE_PER_SECOND} purchases/s, seed ${CHAOS_SEED}`, [
      ['settings', JSON.stringify(NETWORK_FAULT_SETTINGS)],
      ['detection bounds (ms)', JSON.stringify(DETECTION_BOUND_MS)],
      ...chaos.timings,
    ]),
    ...rounds.map(figureLine),
    'workers:',
    ...(chaos.fleet?.summaryLines() ?? []),
  ];
  console.log(lines.join('\n'));
}

describe(`a fleet of 3 behind network faults on its database and broker paths (${FAULTS.length} rounds)`, () => {
  runChaosScenario(chaos, runScenario, report);
  afterAll(async () => {
    await sampler?.stop();
    await Promise.all(Object.values(proxies).map((proxy) => proxy.close()));
  });

  describe.each(FAULTS.map((fault, index) => [`${fault.path} ${fault.name}`, index] as const))(
    '%s',
    (_, index) => {
      const round = () => rounds[index]!;

      it('ends with one order per unique valid purchase, none doubled, and only poison in the DLQ', () => {
        const { figures, mix } = round();
        expect(round().sale!.confirmed).toBe(mix.bodies.length);
        expect(figures!.orders).toBe(mix.timestampsByPair.size);
        expect(figures!.publishedPairsWithoutOrder).toBe(0);
        expect(figures!.ordersNotPublished).toBe(0);
        expect(figures!.distinctOrderPairs).toBe(figures!.orders);
        expect(figures!.deadLetteredValid).toBe(0);
        expect(figures!.poisonNotDeadLettered).toBe(0);
        expect(figures!.deadLetteredWithoutReason).toBe(0);
        expect(figures!.purchaseQueueDepth).toBe(0);
        // A dead letter is published with a confirm, then acked: an ack lost with a connection leaves a copy.
        expect(figures!.deadLettered - mix.poisonBodies.size).toBeLessThanOrEqual(FLEET_UNACKED_WINDOW);
      });

      it('audits every order', () => {
        expect(round().figures!.ordersWithoutAudit).toBe(0);
        expect(round().figures!.confirmedAuditWithoutOrder).toBe(0);
      });

      it('has every worker ready again by itself after the heal', () => {
        expect(round().recoveryMs).toBeLessThan(RECOVERY_TIMEOUT_MS);
      });
    },
  );

  it.each(['database', 'broker'] as const)(
    'answers /ready with 503 on every worker while the %s path is a black hole',
    (path) => {
      const hole = rounds.find((round) => round.fault.path === path && round.fault.name === 'black hole')!;
      for (const detectionMs of hole.detectionMs) {
        expect(detectionMs).toBeLessThanOrEqual(DETECTION_BOUND_MS[path]);
      }
      expect(hole.readyInHole).toEqual(FLEET.map(() => 0));
      // Judged on the seconds between the detection and the heal: at least a few samples each.
      for (const judged of hole.judgedSamples) expect(judged).toBeGreaterThanOrEqual(6);
    },
  );

  it('restarts no worker, and every worker exits 0 at the end', () => {
    expect(chaos.fleet!.everyProcess).toHaveLength(FLEET.length);
    expect([...finalExits.values()]).toEqual(FLEET.map(() => ({ code: 0, signal: null })));
  });
});
