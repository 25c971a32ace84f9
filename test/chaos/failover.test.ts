import { afterAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { applyMigrations } from '../../src/tools/migrate/migrate.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { type PrimaryKill, PrivatePostgresReplica } from '../support/private-postgres-replica.js';
import { PrivateRabbitMq } from '../support/private-rabbitmq.js';
import type { WorkerExit } from '../support/worker-process.js';
import { type ChaosFigures, collectFigures, table } from './chaos-figures.js';
import { CHAOS_QUEUES, CHAOS_SEED, ChaosRun, runChaosScenario } from './chaos-fleet.js';
import { PurchaseChannel } from './purchase-channel.js';
import { purchaseMix } from './purchase-mix.js';
import { ReadinessSampler } from './readiness-samples.js';
import { SteadySale } from './steady-sale.js';

const CHAOS_PURCHASES = Number(process.env.CHAOS_PURCHASES ?? 50_000);
// Half the chaos size: CI's 8000 make 4000 purchases here.
const TOTAL_PURCHASES = Math.ceil(CHAOS_PURCHASES / 2);
/**
 * How long the address leads to a standby not yet promoted: FAILOVER_READ_ONLY_MS, else from 15 s at CI size
 * up to 60 s at full size (a minute is what a Patroni or CloudNativePG failover may take to promote).
 */
const READ_ONLY_MS = Number(
  process.env.FAILOVER_READ_ONLY_MS ?? Math.min(60_000, Math.max(15_000, CHAOS_PURCHASES * 1.2)),
);
/** The sale runs before the kill, through the read-only window, and a while after the promotion. */
const SALE_MS = READ_ONLY_MS + 8000;
const FLEET = ['failover-1', 'failover-2', 'failover-3'];
/** How long a worker may take to notice the database went read-only (the first samples are not judged). */
const DETECTION_ALLOWANCE_MS = 5000;
/** How long after the promotion every worker must be ready again. */
const RECOVERY_TIMEOUT_MS = 30_000;
const PROGRESS_TIMEOUT_MS = 60_000;
const SETTLE_TIMEOUT_MS = 120_000 + TOTAL_PURCHASES * 4;
const READ_ONLY_REASON = /read-only/i;

/** Settings that bound how long a worker may hang on a connection the failover broke. */
const FAILOVER_SETTINGS = {
  DB_CONNECT_TIMEOUT_MS: '2000',
  DB_STATEMENT_TIMEOUT_MS: '2000',
  DB_QUERY_TIMEOUT_MS: '3000',
};

const mix = purchaseMix(TOTAL_PURCHASES, CHAOS_SEED);
const chaos = new ChaosRun<PrivateRabbitMq>();
let pair: PrivatePostgresReplica | undefined;
let proxy: FaultProxy | undefined;
let sampler: ReadinessSampler | undefined;
let sale: SteadySale | undefined;
let kill: PrimaryKill | undefined;
let oldPrimaryLeft: number[] = [];
let figures: ChaosFigures | undefined;
let finalExits = new Map<string, WorkerExit>();
let standbyWasInRecovery: boolean | undefined;
let droppedTestConnections = 0;
const moments = {
  faultMs: 0,
  retargetedMs: 0,
  promotedMs: 0,
  ordersBeforeKill: 0,
  ordersOnStandby: 0,
  ordersAtPromotion: 0,
};
const readyInQueue = { atFault: 0, atPromotion: 0 };

const elapsedSince = (startMs: number) => Date.now() - startMs;

/** Per worker: from the kill to its first 503, and from the promotion to its first 200 again. */
function detectionAndRecovery(): { worker: string; detectionMs?: number; recoveryMs?: number }[] {
  return FLEET.map((worker) => ({
    worker,
    detectionMs: sampler?.firstAfter(worker, moments.faultMs, (taken) => taken.status === 503),
    recoveryMs: sampler?.firstAfter(worker, moments.promotedMs, (taken) => taken.status === 200),
  }));
}

/** The samples of the read-only window a worker had to answer 503 in: after its detection allowance. */
function judgedSamples(worker: string) {
  return sampler!.between(worker, moments.retargetedMs + DETECTION_ALLOWANCE_MS, moments.promotedMs);
}

async function startServers(): Promise<void> {
  const [broker, replica] = await Promise.all([PrivateRabbitMq.start(), PrivatePostgresReplica.start()]);
  [chaos.broker, pair] = [broker, replica];
  proxy = await FaultProxy.start('127.0.0.1', replica.primary.port);
  await applyMigrations(replica.primary.url('flashsale'));
  // The test reads its figures through the same address as the fleet, so it follows the failover too.
  const url = `postgresql://postgres@${proxy.address}/flashsale`;
  const sql = new pg.Pool({ connectionString: url, max: 2 });
  sql.on('error', () => (droppedTestConnections += 1)); // idle connections the reset ended: the pool replaces them
  chaos.database = { server: replica, url, sql };
}

async function runScenario(): Promise<void> {
  const startedMs = Date.now();
  await startServers();
  const fleet = chaos.newFleet(chaos.broker!.url);
  await Promise.all(FLEET.map((workerId) => fleet.start(workerId)));
  chaos.channel = await PurchaseChannel.open(chaos.broker!.url);
  chaos.timings.push(['primary, standby, broker and fleet up (ms)', elapsedSince(startedMs)]);

  sampler = new ReadinessSampler(FLEET.map((workerId) => fleet.worker(workerId)));
  sampler.start();
  sale = SteadySale.start(
    chaos.channel,
    CHAOS_QUEUES.purchase,
    mix.bodies,
    mix.bodies.length / (SALE_MS / 1000),
  );
  moments.ordersBeforeKill = await chaos.ordersGrownBeforeFault(
    0,
    TOTAL_PURCHASES,
    'kill the primary',
    PROGRESS_TIMEOUT_MS,
  );
  readyInQueue.atFault = await chaos.channel.depth(CHAOS_QUEUES.purchase);

  moments.faultMs = Date.now();
  kill = await pair!.killPrimary();
  // The address now leads to the standby, still in recovery; the connections to the dead primary are reset.
  proxy!.retarget('127.0.0.1', pair!.standby.port, { resetExisting: true });
  moments.retargetedMs = Date.now();
  const oldPrimaryGone = pair!.awaitOldPrimaryGone(kill);
  standbyWasInRecovery = await pair!.inRecovery(pair!.standby);
  moments.ordersOnStandby = await chaos.orderCount();
  // The read-only window is the scenario's own length, not a wait for a condition.
  await new Promise((resolve) => setTimeout(resolve, READ_ONLY_MS));
  moments.ordersAtPromotion = await chaos.orderCount();
  readyInQueue.atPromotion = await chaos.channel.depth(CHAOS_QUEUES.purchase);

  await pair!.promoteStandby();
  moments.promotedMs = Date.now();
  await fleet.waitAllReady(RECOVERY_TIMEOUT_MS);
  chaos.timings.push(['promotion to every worker ready (ms)', elapsedSince(moments.promotedMs)]);
  await oldPrimaryGone;
  oldPrimaryLeft = await pair!.liveProcesses(kill, 'primary');

  await sale.done();
  chaos.timings.push(['settling after the last publish (ms)', await chaos.settle(SETTLE_TIMEOUT_MS)]);
  await sampler.stop();
  finalExits = await fleet.stopAll();
  figures = await collectFigures(chaos.database!.sql, chaos.channel, CHAOS_QUEUES, mix);
}

function report(): void {
  const perWorker = detectionAndRecovery();
  const lines = [
    table(`failover: ${TOTAL_PURCHASES} purchases, seed ${CHAOS_SEED} (CHAOS_SEED to replay)`, [
      ['unique valid purchases', mix.timestampsByPair.size],
      ['duplicates', mix.duplicates],
      ['poison', mix.poisonBodies.size],
      ['sale rate (purchases/s)', Math.round(sale?.perSecond ?? 0)],
      ['settings', JSON.stringify(FAILOVER_SETTINGS)],
      ...chaos.timings,
      ['read-only window (ms)', moments.promotedMs - moments.retargetedMs],
      [
        'orders before the kill / on the standby / at the promotion',
        `${moments.ordersBeforeKill} / ${moments.ordersOnStandby} / ${moments.ordersAtPromotion}`,
      ],
      [
        'ready in queue at the kill / at the promotion',
        `${readyInQueue.atFault} / ${readyInQueue.atPromotion}`,
      ],
      ['standby in recovery after the kill', String(standbyWasInRecovery)],
      [
        'old primary processes',
        kill
          ? `${kill.children.length} children; ${kill.killedLate.length} killed late; gone in ${kill.childrenGoneMs} ms; left ${oldPrimaryLeft.length}`
          : 'not killed',
      ],
      ['idle test-pool connections dropped', droppedTestConnections],
    ]),
    'readiness (kill → first 503, promotion → first 200):',
    ...perWorker.map(
      ({ worker, detectionMs, recoveryMs }) =>
        `  ${worker}: detection ${detectionMs ?? 'never'} ms, recovery ${recoveryMs ?? 'never'} ms; ` +
        `judged samples ${sampler ? judgedSamples(worker).length : 0}, of them 200: ${
          sampler ? judgedSamples(worker).filter((taken) => taken.status === 200).length : 0
        }; reasons ${JSON.stringify([...new Set(sampler?.between(worker, moments.retargetedMs, moments.promotedMs).flatMap((taken) => taken.reasons))].slice(0, 3))}`,
    ),
  ];
  if (figures) {
    const { repeatedDeadLetters, repeatedDeadLetterWriters, ...counts } = figures;
    lines.push(
      table('figures after the fleet stopped:', [
        ...Object.entries(counts).map(([name, value]): [string, string | number] => [
          name,
          typeof value === 'object' ? JSON.stringify(value) : value,
        ]),
        ['poison dead-lettered more than once', repeatedDeadLetterWriters.length],
      ]),
      ...repeatedDeadLetters.map((line) => `  dead-lettered more than once: ${line}`),
    );
    const worst = (key: 'detectionMs' | 'recoveryMs') =>
      Math.max(...perWorker.map((entry) => entry[key] ?? Number.POSITIVE_INFINITY));
    lines.push(
      `FIGURE failover: detection ${worst('detectionMs')} ms, read-only ${moments.promotedMs - moments.retargetedMs} ms, ` +
        `recovery ${worst('recoveryMs')} ms, orders ${figures.orders}/${figures.expectedOrders}, ` +
        `duplicates ${figures.orders - figures.distinctOrderPairs}, DLQ ${figures.deadLettered} (poison ${figures.poisonPublished})`,
    );
  }
  lines.push('workers:', ...(chaos.fleet?.summaryLines() ?? []));
  console.log(lines.join('\n'));
}

describe(`a fleet of 3 across a PostgreSQL failover (${TOTAL_PURCHASES} purchases, ${READ_ONLY_MS} ms read-only)`, () => {
  runChaosScenario(chaos, runScenario, report);
  // After runChaosScenario's afterAll has killed the fleet and destroyed the pair (and the old primary).
  afterAll(async () => {
    await sampler?.stop();
    await proxy?.close();
  });

  it('moved the address onto a standby still in recovery, and left no process of the old primary running', () => {
    expect(standbyWasInRecovery).toBe(true);
    expect(kill!.children.length).toBeGreaterThan(0);
    expect(oldPrimaryLeft).toEqual([]);
  });

  it('writes an order on the new primary for every confirmed valid purchase, and no other order', () => {
    expect(sale!.confirmed).toBe(mix.bodies.length);
    expect(figures!.orders).toBe(mix.timestampsByPair.size);
    expect(figures!.publishedPairsWithoutOrder).toBe(0);
    expect(figures!.ordersNotPublished).toBe(0);
    expect(figures!.ordersWithUnpublishedTimestamp).toBe(0);
  });

  it('never holds two orders for one (saleId, userId)', () => {
    expect(figures!.distinctOrderPairs).toBe(figures!.orders);
  });

  it('dead-letters the poison and nothing valid: the read-only window spent no delivery', () => {
    expect(figures!.deadLetteredValid).toBe(0);
    expect(figures!.poisonNotDeadLettered).toBe(0);
    expect(figures!.deadLetteredWithoutReason).toBe(0);
    expect(figures!.purchaseQueueDepth).toBe(0);
  });

  it('audits every order, and confirms none twice', () => {
    expect(figures!.ordersWithoutAudit).toBe(0);
    expect(figures!.confirmedAuditRepeats).toBe(0);
    expect(figures!.confirmedAuditWithoutOrder).toBe(0);
  });

  it('answers /ready with 503 on every worker while the database is read-only, saying so', () => {
    for (const worker of FLEET) {
      const judged = judgedSamples(worker);
      expect(judged.length).toBeGreaterThanOrEqual(
        Math.floor((READ_ONLY_MS - DETECTION_ALLOWANCE_MS) / 1000),
      );
      expect(judged.filter((taken) => taken.status !== 503)).toEqual([]);
      expect(
        judged.filter((taken) => !taken.reasons.some((reason) => READ_ONLY_REASON.test(reason))),
      ).toEqual([]);
    }
  });

  it('has every worker ready again after the promotion, without a restart, and each exits 0 at the end', () => {
    for (const { worker, recoveryMs } of detectionAndRecovery()) {
      expect({ worker, recovered: recoveryMs !== undefined }).toEqual({ worker, recovered: true });
    }
    expect(chaos.fleet!.everyProcess).toHaveLength(FLEET.length);
    expect([...finalExits.values()]).toEqual(FLEET.map(() => ({ code: 0, signal: null })));
  });
});
