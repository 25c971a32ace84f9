import { describe, expect, it } from '@jest/globals';
import { PrivateRabbitMq } from '../support/private-rabbitmq.js';
import type { WorkerExit } from '../support/worker-process.js';
import { type ChaosFigures, collectFigures, table } from './chaos-figures.js';
import {
  CHAOS_QUEUES,
  CHAOS_SEED,
  CHAOS_WORKER_SETTINGS,
  ChaosRun,
  runChaosScenario,
  STOP_TIMEOUT_MS,
} from './chaos-fleet.js';
import { PurchaseChannel } from './purchase-channel.js';
import { purchaseMix } from './purchase-mix.js';

const TOTAL_PURCHASES = Number(process.env.CHAOS_PURCHASES ?? 50_000);
const FLEET = ['chaos-1', 'chaos-2', 'chaos-3'];
// What a SIGKILLed worker may take with it: audit events for its unacked deliveries (PREFETCH) and its
// unflushed buffer, at most one batch being written and one filling (2 × AUDIT_BATCH_SIZE).
const KILLED_WORKER_AUDIT_WINDOW =
  Number(CHAOS_WORKER_SETTINGS.PREFETCH) + 2 * Number(CHAOS_WORKER_SETTINGS.AUDIT_BATCH_SIZE);
const PROGRESS_TIMEOUT_MS = 120_000;
const SETTLE_TIMEOUT_MS = 180_000 + TOTAL_PURCHASES * 4;

interface FaultRecord {
  fault: string;
  atIso: string;
  ordersAtFault: number;
  readyInQueueAtFault: number;
  /** Unacked messages on the busiest worker when the fault began; that worker is the victim of a kill. */
  busiestInFlight: number;
  outcome: string;
  recoveryMs: number;
}

const mix = purchaseMix(TOTAL_PURCHASES, CHAOS_SEED);
const faults: FaultRecord[] = [];
const chaos = new ChaosRun<PrivateRabbitMq>();
let killedExit: WorkerExit | undefined;
let killedWorkerId: string | undefined;
let terminatedExit: WorkerExit | undefined;
let finalExits = new Map<string, WorkerExit>();
let figures: ChaosFigures | undefined;
let droppedIdleConnections = 0;

const elapsedSince = (startMs: number) => Date.now() - startMs;

/**
 * Publishes the next share of the mix and runs `fault` as soon as orders grow from it, while that share is
 * still arriving and being consumed, so the fault lands with batches in flight. A fault that takes the broker
 * away runs once the share is confirmed (`afterConfirms`): the publisher's own reconnection is not under test.
 */
async function faultDuringShare(
  share: string[],
  fault: string,
  { afterConfirms }: { afterConfirms: boolean },
  run: (record: FaultRecord, busiestWorkerId: string) => Promise<void>,
): Promise<void> {
  const [channel, fleet] = [chaos.channel!, chaos.fleet!];
  const ordersBefore = await chaos.orderCount();
  const publishing = channel.publish(CHAOS_QUEUES.purchase, share);
  const publishFailure = publishing.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (afterConfirms) await publishing;
  const ordersAtFault = await chaos.ordersGrownBeforeFault(
    ordersBefore,
    share.length,
    fault,
    PROGRESS_TIMEOUT_MS,
  );
  const busiest = await fleet.busiestWorker();
  const readyInQueueAtFault = await channel.depth(CHAOS_QUEUES.purchase);
  const record: FaultRecord = {
    fault,
    atIso: new Date().toISOString(),
    ordersAtFault,
    readyInQueueAtFault,
    busiestInFlight: busiest.inFlight,
    outcome: '',
    recoveryMs: 0,
  };
  const startedMs = Date.now();
  await run(record, busiest.workerId);
  record.recoveryMs = elapsedSince(startedMs);
  faults.push(record);
  const failure = await publishFailure;
  if (failure) throw new Error(`publishing the share before "${fault}" failed`, { cause: failure });
}

function shares(bodies: string[], count: number): string[][] {
  const size = Math.ceil(bodies.length / count);
  return Array.from({ length: count }, (_, index) => bodies.slice(index * size, (index + 1) * size));
}

async function runScenario(): Promise<void> {
  const startedMs = Date.now();
  const { broker, database } = await chaos.startServers(() => PrivateRabbitMq.start());
  // The database restart ends idle pooled connections; the pool replaces them, the count goes in the report.
  database.sql.on('error', () => (droppedIdleConnections += 1));
  const fleet = chaos.newFleet(broker.url);
  await Promise.all(FLEET.map((workerId) => fleet.start(workerId)));
  chaos.channel = await PurchaseChannel.open(broker.url);
  chaos.timings.push(['servers and fleet up (ms)', elapsedSince(startedMs)]);

  const [first, second, third, fourth, last] = shares(mix.bodies, 5);
  const consumingMs = Date.now();
  await faultDuringShare(
    first!,
    'SIGKILL a worker, restart it',
    { afterConfirms: false },
    async (record, workerId) => {
      const victim = fleet.worker(workerId);
      killedWorkerId = workerId;
      victim.kill('SIGKILL');
      killedExit = await victim.waitForExit(10_000);
      await fleet.start(workerId);
      record.outcome = `${workerId} ${killedExit.signal ?? `code ${killedExit.code}`}, restarted`;
    },
  );
  await faultDuringShare(second!, 'restart the broker', { afterConfirms: true }, async (record) => {
    await chaos.channel!.close();
    await broker.restart();
    chaos.channel = await PurchaseChannel.open(broker.url);
    await fleet.waitAllReady();
    record.outcome = 'all workers ready again';
  });
  await faultDuringShare(third!, 'restart the database', { afterConfirms: false }, async (record) => {
    await database.server.restart();
    await fleet.waitAllReady();
    record.outcome = 'all workers ready again';
  });
  await faultDuringShare(
    fourth!,
    'SIGTERM a worker mid-batch, replace it',
    { afterConfirms: false },
    async (record, workerId) => {
      const victim = fleet.retire(workerId);
      victim.sigterm();
      terminatedExit = await victim.waitForExit(STOP_TIMEOUT_MS);
      await fleet.start('chaos-4');
      record.outcome = `${workerId} ${terminatedExit.signal ?? `code ${terminatedExit.code}`}, chaos-4 started`;
    },
  );
  await chaos.channel.publish(CHAOS_QUEUES.purchase, last!);
  chaos.timings.push(['publishing and faults (ms)', elapsedSince(consumingMs)]);

  const settleMs = await chaos.settle(SETTLE_TIMEOUT_MS);
  chaos.timings.push(['settling after the last publish (ms)', settleMs]);
  chaos.timings.push([
    'purchases per second, end to end',
    Math.round(TOTAL_PURCHASES / (elapsedSince(consumingMs) / 1000)),
  ]);
  finalExits = await fleet.stopAll();
  figures = await collectFigures(database.sql, chaos.channel, CHAOS_QUEUES, mix);
}

function report(): void {
  const lines = [
    table(`chaos run: ${TOTAL_PURCHASES} purchases, seed ${CHAOS_SEED} (CHAOS_SEED to replay)`, [
      ['unique valid purchases', mix.timestampsByPair.size],
      ['duplicates', mix.duplicates],
      ['poison', `${mix.poisonBodies.size} ${JSON.stringify(mix.poisonByKind)}`],
      ...chaos.timings,
      ['idle test-pool connections dropped', droppedIdleConnections],
    ]),
    'faults:',
    ...faults.map(
      (record) =>
        `  ${record.atIso} ${record.fault.padEnd(40)} orders ${record.ordersAtFault}, ready in queue ${record.readyInQueueAtFault}, ` +
        `busiest worker in flight ${record.busiestInFlight}; ${record.outcome} in ${record.recoveryMs} ms`,
    ),
  ];
  if (figures) {
    const { repeatedDeadLetters, ...counts } = figures;
    lines.push(
      table('figures after the fleet stopped:', [
        ...Object.entries(counts).map(([name, value]): [string, string | number] => [
          name,
          typeof value === 'object' ? JSON.stringify(value) : value,
        ]),
        ['killed-worker audit window (bound)', KILLED_WORKER_AUDIT_WINDOW],
        // Above 0: redeliveries of committed purchases (the faults at work); below 0: duplicate audit rows the
        // SIGKILLed worker took with it.
        [
          'ORDER_DUPLICATE rows minus published duplicates',
          (figures.auditByEvent.ORDER_DUPLICATE ?? 0) - mix.duplicates,
        ],
      ]),
      ...repeatedDeadLetters.map((line) => `  dead-lettered more than once: ${line}`),
    );
  }
  lines.push('workers:', ...(chaos.fleet?.summaryLines() ?? []));
  console.log(lines.join('\n'));
}

describe(`a fleet of 3 workers under chaos (${TOTAL_PURCHASES} purchases)`, () => {
  runChaosScenario(chaos, runScenario, report);

  it('writes exactly one order for every unique valid purchase, and no other order', () => {
    expect(figures!.orders).toBe(mix.timestampsByPair.size);
    expect(figures!.publishedPairsWithoutOrder).toBe(0);
    expect(figures!.ordersNotPublished).toBe(0);
    expect(figures!.ordersWithUnpublishedTimestamp).toBe(0);
  });

  it('never holds two orders for one (saleId, userId)', () => {
    expect(figures!.distinctOrderPairs).toBe(figures!.orders);
  });

  it('dead-letters every poison message, with a reason, and nothing valid', () => {
    expect(figures!.poisonNotDeadLettered).toBe(0);
    expect(figures!.deadLetteredValid).toBe(0);
    expect(figures!.deadLetteredWithoutReason).toBe(0);
  });

  it('dead-letters each poison message once, but for copies whose ack the SIGKILLed worker took with it', () => {
    // Dead-lettering is publish-with-confirm, then ack: a worker killed between the two leaves its copy in the
    // DLQ and the original in the queue, and the next worker dead-letters it again (at-least-once, never lost).
    // Every extra copy must therefore have been written by the killed worker.
    for (const writers of figures!.repeatedDeadLetterWriters) {
      expect(writers.filter((writer) => writer !== killedWorkerId).length).toBeLessThanOrEqual(1);
    }
    const extraCopies = figures!.deadLettered - mix.poisonBodies.size;
    expect(extraCopies).toBe(
      figures!.repeatedDeadLetterWriters.reduce((sum, writers) => sum + writers.length - 1, 0),
    );
    expect(extraCopies).toBeLessThanOrEqual(KILLED_WORKER_AUDIT_WINDOW);
  });

  it('leaves the purchase queue empty once the fleet has stopped', () => {
    expect(figures!.purchaseQueueDepth).toBe(0);
  });

  it('ends the SIGKILLed worker by the signal, and the SIGTERMed worker with exit code 0', () => {
    expect(killedExit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(terminatedExit).toEqual({ code: 0, signal: null });
  });

  it('shuts every remaining worker down gracefully with exit code 0', () => {
    expect(finalExits.size).toBe(FLEET.length);
    for (const exit of finalExits.values()) expect(exit).toEqual({ code: 0, signal: null });
  });

  it('audits each confirmed order once, and loses audit rows only within the SIGKILLed worker window', () => {
    expect(figures!.confirmedAuditRepeats).toBe(0);
    expect(figures!.confirmedAuditWithoutOrder).toBe(0);
    expect(figures!.ordersWithoutAudit).toBeLessThanOrEqual(KILLED_WORKER_AUDIT_WINDOW);
    expect(figures!.auditByEvent.ORDER_CONFIRMED ?? 0).toBeGreaterThanOrEqual(
      figures!.orders - KILLED_WORKER_AUDIT_WINDOW,
    );
    expect(figures!.auditByEvent.MESSAGE_REJECTED ?? 0).toBeGreaterThanOrEqual(
      mix.poisonBodies.size - KILLED_WORKER_AUDIT_WINDOW,
    );
  });
});
