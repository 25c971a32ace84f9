import { describe, expect, it } from '@jest/globals';
import amqp from 'amqplib';
import { nodeOrderFor } from '../../src/common/broker-nodes.js';
import { purchaseTopology } from '../../src/broker/topology.js';
import { parseSettings } from '../../src/config/settings.js';
import { waitFor } from '../support/harness.js';
import type { PrivateRabbitMq } from '../support/private-rabbitmq.js';
import { PrivateRabbitMqCluster } from '../support/private-rabbitmq-cluster.js';
import type { WorkerExit, WorkerProcess } from '../support/worker-process.js';
import { type ChaosFigures, collectFigures, table } from './chaos-figures.js';
import {
  CHAOS_QUEUES,
  CHAOS_SEED,
  CHAOS_WORKER_SETTINGS,
  ChaosRun,
  runChaosScenario,
} from './chaos-fleet.js';
import { PurchaseChannel } from './purchase-channel.js';
import { type PurchaseMix, purchaseMix } from './purchase-mix.js';

// Two rounds of half the chaos size each: CI's 8000 purchases keep the whole file near two minutes.
const ROUND_PURCHASES = Math.ceil(Number(process.env.CHAOS_PURCHASES ?? 50_000) / 2);
const FLEET_SIZE = 3;
// A node lost with acks in flight: every unacked delivery of the fleet may come back, a poison one as a
// second DLQ copy (dead-lettering is publish-with-confirm, then ack).
const FLEET_UNACKED_WINDOW = FLEET_SIZE * Number(CHAOS_WORKER_SETTINGS.PREFETCH);
const FAILOVER_TIMEOUT_MS = 60_000;
const SETTLE_TIMEOUT_MS = 120_000 + ROUND_PURCHASES * 4;

interface Round {
  name: string;
  mix: PurchaseMix;
  fault: string;
  /** Node the fault hit, and how many workers were connected to it. */
  target: string;
  workersOnTarget: number;
  ordersAtFault: number;
  readyInQueueAtFault: number;
  /** From the fault until every worker is ready on another node. */
  allReadyElsewhereMs: number;
  /** Per worker, from its `disconnected from` log line to its next `consuming from` line. */
  workerFailoverMs: (number | undefined)[];
  settleMs: number;
  figures?: ChaosFigures;
}

const rounds: Round[] = [];
const chaos = new ChaosRun<PrivateRabbitMqCluster>();
let killedNode: PrivateRabbitMq | undefined;
let leaderAtKill: string | undefined;
let leaderAfterKill: string | undefined;
let aliveAfterNodeLoss: string[] = [];
let finalExits = new Map<string, WorkerExit>();

const elapsedSince = (startMs: number) => Date.now() - startMs;

/** The cluster node a worker's /ready names (`node`: host:port), whether it is ready or not. */
async function nodeOf(worker: WorkerProcess): Promise<{ ready: boolean; node: PrivateRabbitMq | undefined }> {
  const response = await fetch(`http://127.0.0.1:${worker.port}/ready`);
  const body = (await response.json()) as { details?: { rabbitmq?: { node?: string | null } } };
  const address = body.details?.rabbitmq?.node;
  const node = address ? chaos.broker!.nodeOnPort(Number(address.split(':').at(-1))) : undefined;
  return { ready: response.status === 200, node };
}

async function workersOn(node: PrivateRabbitMq): Promise<number> {
  const nodes = await Promise.all(
    chaos.fleet!.workerIds.map((workerId) => nodeOf(chaos.fleet!.worker(workerId))),
  );
  return nodes.filter((found) => found.node === node).length;
}

/** From the worker's first `disconnected from` log line at or after `sinceMs` to its next `consuming from`. */
function failoverMsOf(worker: WorkerProcess, sinceMs: number): number | undefined {
  const times = (text: string) =>
    worker
      .logEntries(text)
      .map((entry) => new Date(entry.time as string | number).getTime())
      .filter((time) => time >= sinceMs);
  const lost = times('disconnected from')[0];
  const consuming = lost === undefined ? undefined : times('consuming from').find((time) => time >= lost);
  return lost === undefined || consuming === undefined ? undefined : consuming - lost;
}

/** Worker names whose node list starts at `node`: the whole fleet on one node, the worst case. */
function workerIdsStartingAt(node: PrivateRabbitMq): string[] {
  const ids: string[] = [];
  for (let index = 1; ids.length < FLEET_SIZE; index += 1) {
    if (nodeOrderFor(chaos.broker!.urls, `cluster-${index}`)[0] === node.url) ids.push(`cluster-${index}`);
  }
  return ids;
}

/** Declares the worker's topology as the first worker would, so the leader placement is known up front. */
async function declareTopology(url: string): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const declaring = await connection.createChannel();
    for (const queue of purchaseTopology(parseSettings({ PURCHASE_QUEUE: CHAOS_QUEUES.purchase }))) {
      await declaring.assertQueue(queue.name, queue.options);
    }
  } finally {
    await connection.close();
  }
}

/**
 * Publishes `mix` (confirmed), runs `fault` on `target` once orders grow, measures the fail-over, waits for
 * the backlog to drain, and reads the figures of this round (the tables are emptied for the next one).
 */
async function runRound(
  name: string,
  mix: PurchaseMix,
  fault: string,
  target: PrivateRabbitMq,
  run: () => Promise<void>,
): Promise<Round> {
  const { sql } = chaos.database!;
  const [channel, fleet] = [chaos.channel!, chaos.fleet!];
  const ordersBefore = await chaos.orderCount();
  await channel.publish(CHAOS_QUEUES.purchase, mix.bodies);
  // As soon as a batch is in: at CI size the whole backlog takes a few seconds.
  const ordersAtFault = await chaos.ordersGrownBeforeFault(
    ordersBefore,
    mix.timestampsByPair.size,
    fault,
    FAILOVER_TIMEOUT_MS,
  );
  const round: Round = {
    name,
    mix,
    fault,
    target: target.nodeName,
    workersOnTarget: await workersOn(target),
    ordersAtFault,
    readyInQueueAtFault: await channel.depth(CHAOS_QUEUES.purchase),
    allReadyElsewhereMs: 0,
    workerFailoverMs: [],
    settleMs: 0,
  };
  rounds.push(round);
  const faultMs = Date.now();
  await run();
  await waitFor(
    `every worker ready on a node other than ${target.nodeName}`,
    async () => {
      const nodes = await Promise.all(fleet.workerIds.map((id) => nodeOf(fleet.worker(id))));
      return nodes.every((found) => found.ready && found.node && found.node !== target);
    },
    { timeoutMs: FAILOVER_TIMEOUT_MS, intervalMs: 50 },
  );
  round.allReadyElsewhereMs = elapsedSince(faultMs);
  round.workerFailoverMs = fleet.workerIds.map((id) => failoverMsOf(fleet.worker(id), faultMs));
  round.settleMs = await chaos.settle(SETTLE_TIMEOUT_MS);
  round.figures = await collectFigures(sql, channel, CHAOS_QUEUES, mix);
  await sql.query('TRUNCATE orders, audit_logs');
  return round;
}

async function runScenario(): Promise<void> {
  const startedMs = Date.now();
  const { broker: cluster } = await chaos.startServers(() => PrivateRabbitMqCluster.start());
  chaos.timings.push(['3-node cluster and database up (ms)', elapsedSince(startedMs)]);
  await declareTopology(cluster.urls[0]!);
  const leader = cluster.nodeNamed((await cluster.replicasOf(CHAOS_QUEUES.purchase)).leader);
  const publishingNode = cluster.nodes.find((node) => node !== leader)!;
  chaos.channel = await PurchaseChannel.open(publishingNode.url);
  const fleet = chaos.newFleet(cluster.urls.join(','));
  await Promise.all(workerIdsStartingAt(leader).map((workerId) => fleet.start(workerId)));

  // Round 1: the node that every worker is connected to and that leads the queue dies, and stays down.
  leaderAtKill = (await cluster.replicasOf(CHAOS_QUEUES.purchase)).leader;
  await runRound('node killed', purchaseMix(ROUND_PURCHASES, CHAOS_SEED), 'SIGKILL', leader, async () => {
    killedNode = leader;
    await leader.kill();
  });
  leaderAfterKill = (await cluster.replicasOf(CHAOS_QUEUES.purchase)).leader;
  aliveAfterNodeLoss = fleet.workerIds.filter((id) => fleet.worker(id).exitStatus === undefined);

  // Round 2: the node is back; the node holding most workers goes into maintenance mode.
  const restartMs = Date.now();
  await leader.start();
  chaos.timings.push(['killed node back in the cluster (ms)', elapsedSince(restartMs)]);
  await chaos.channel.close();
  chaos.channel = await PurchaseChannel.open(leader.url);
  const counts = await Promise.all(cluster.nodes.map((node) => workersOn(node)));
  const busiest = cluster.nodes[counts.indexOf(Math.max(...counts))]!;
  await runRound(
    'node drained',
    purchaseMix(ROUND_PURCHASES, CHAOS_SEED + 1),
    'rabbitmq-upgrade drain',
    busiest,
    () => cluster.drain(busiest),
  );
  await cluster.revive(busiest);
  finalExits = await fleet.stopAll();
}

function report(): void {
  const lines = [
    table(
      `cluster chaos run: 2 rounds of ${ROUND_PURCHASES} purchases, seed ${CHAOS_SEED} (CHAOS_SEED to replay)`,
      [...chaos.timings],
    ),
  ];
  for (const round of rounds) {
    const figures = round.figures;
    lines.push(
      table(`round "${round.name}": ${round.fault} ${round.target}`, [
        ['unique valid purchases', round.mix.timestampsByPair.size],
        ['duplicates published', round.mix.duplicates],
        ['poison published', round.mix.poisonBodies.size],
        ['workers on the node at the fault', round.workersOnTarget],
        ['orders at the fault', round.ordersAtFault],
        ['ready in queue at the fault', round.readyInQueueAtFault],
        ['fail-over: every worker ready elsewhere (ms)', round.allReadyElsewhereMs],
        [
          'fail-over per worker: disconnected → consuming (ms)',
          round.workerFailoverMs.map((ms) => ms ?? 'none').join(', '),
        ],
        ['settling after the fault (ms)', round.settleMs],
        ['orders', figures?.orders ?? '-'],
        ['doubled orders', figures ? figures.orders - figures.distinctOrderPairs : '-'],
        ['missing orders', figures?.publishedPairsWithoutOrder ?? '-'],
        ['dead-lettered (DLQ)', figures?.deadLettered ?? '-'],
        ['poison not dead-lettered', figures?.poisonNotDeadLettered ?? '-'],
        ['poison dead-lettered twice', figures?.poisonDeadLetteredTwice ?? '-'],
        ['left in the purchase queue', figures?.purchaseQueueDepth ?? '-'],
      ]),
    );
  }
  lines.push('workers:', ...(chaos.fleet?.summaryLines() ?? []));
  console.log(lines.join('\n'));
}

function expectExactlyOnce(figures: ChaosFigures | undefined, mix: PurchaseMix): void {
  expect(figures).toBeDefined();
  expect(figures!.orders).toBe(mix.timestampsByPair.size);
  expect(figures!.distinctOrderPairs).toBe(figures!.orders);
  expect(figures!.publishedPairsWithoutOrder).toBe(0);
  expect(figures!.ordersNotPublished).toBe(0);
  expect(figures!.ordersWithUnpublishedTimestamp).toBe(0);
  expect(figures!.poisonNotDeadLettered).toBe(0);
  expect(figures!.deadLetteredValid).toBe(0);
  expect(figures!.deadLetteredWithoutReason).toBe(0);
  expect(figures!.deadLettered - mix.poisonBodies.size).toBeLessThanOrEqual(FLEET_UNACKED_WINDOW);
  expect(figures!.purchaseQueueDepth).toBe(0);
  expect(figures!.confirmedAuditRepeats).toBe(0);
  expect(figures!.confirmedAuditWithoutOrder).toBe(0);
}

describe(`a fleet of ${FLEET_SIZE} workers on a 3-node RabbitMQ cluster (2 × ${ROUND_PURCHASES} purchases)`, () => {
  runChaosScenario(chaos, runScenario, report);

  it('fails over when the node that every worker uses and that leads the queue is killed and kept down', () => {
    const [killed] = rounds;
    expect(killed?.workersOnTarget).toBe(FLEET_SIZE);
    expect(killed?.target).toBe(killedNode?.nodeName);
    expect(leaderAtKill).toBe(killedNode?.nodeName);
    expect(leaderAfterKill).not.toBe(killedNode?.nodeName);
    expect(killed?.allReadyElsewhereMs).toBeGreaterThan(0);
    expect(killed?.workerFailoverMs).toEqual(Array.from({ length: FLEET_SIZE }, () => expect.any(Number)));
    expectExactlyOnce(killed?.figures, killed!.mix);
  });

  it('keeps every worker alive through the loss of its node', () => {
    expect(aliveAfterNodeLoss).toHaveLength(FLEET_SIZE);
  });

  it('moves the workers off a node in maintenance mode without losing or doubling anything', () => {
    const drained = rounds[1];
    expect(drained?.workersOnTarget).toBeGreaterThan(0);
    expect(drained?.allReadyElsewhereMs).toBeGreaterThan(0);
    const movedWorkers = drained!.workerFailoverMs.filter((ms) => ms !== undefined);
    expect(movedWorkers).toHaveLength(drained!.workersOnTarget);
    expectExactlyOnce(drained?.figures, drained!.mix);
  });

  it('shuts every worker down gracefully with exit code 0 at the end', () => {
    expect(finalExits.size).toBe(FLEET_SIZE);
    for (const exit of finalExits.values()) expect(exit).toEqual({ code: 0, signal: null });
  });
});
