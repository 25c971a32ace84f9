import { afterAll, beforeAll } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { applyMigrations } from '../../src/tools/migrate/migrate.js';
import { waitFor } from '../support/harness.js';
import { PrivatePostgres } from '../support/private-postgres.js';
import { type WorkerExit, WorkerProcess } from '../support/worker-process.js';
import { orderCount } from './chaos-figures.js';
import type { PurchaseChannel } from './purchase-channel.js';

/** Settings small enough that every fault catches batches, retries and back-offs in the middle. */
export const CHAOS_WORKER_SETTINGS = {
  PREFETCH: '200',
  BATCH_SIZE: '100',
  RETRY_BASE_MS: '100',
  RETRY_MAX_MS: '2000',
  SHUTDOWN_DEADLINE_MS: '10000',
  DB_CONNECT_TIMEOUT_MS: '2000',
  AUDIT_BATCH_SIZE: '100',
  QUEUE_DEPTH_POLL_MS: '1000',
  LOG_LEVEL: 'info',
} as const;

/** The queues of a chaos run, on its own broker. */
export const CHAOS_QUEUES = { purchase: 'purchase', deadLetter: 'purchase.dlq' };

/** Seeds the purchase mix: CHAOS_SEED replays a run, without it each run draws its own. */
export const CHAOS_SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** How long a SIGTERMed worker may take to exit: its shutdown deadline and a margin. */
export const STOP_TIMEOUT_MS = Number(CHAOS_WORKER_SETTINGS.SHUTDOWN_DEADLINE_MS) + 5000;

const READY_TIMEOUT_MS = 60_000;
// How long the order count must stay put, with the queue empty, before a run's figures count as final.
const QUIET_PERIOD_MS = 3000;

/** Messages the worker has received and not yet settled, from its /metrics. */
async function inFlightOf(worker: WorkerProcess): Promise<number> {
  const match = /^flashsale_messages_in_flight(?:\{[^}]*\})? (\S+)$/m.exec(await worker.metrics());
  return Number(match?.[1] ?? NaN);
}

/** What one worker process did, for the report. */
export interface WorkerSummary {
  workerId: string;
  pid: number | undefined;
  exit: string;
  settled: { confirmed: number; duplicate: number; rejected: number; retried: number };
  errorLines: number;
  warnLines: number;
}

/**
 * The workers of a chaos run, each a separate process with its own WORKER_ID, as `docker compose --scale`
 * runs them. Every process ever started is kept, so the report covers the killed ones too.
 */
export class ChaosFleet {
  readonly everyProcess: WorkerProcess[] = [];
  private readonly current = new Map<string, WorkerProcess>();

  constructor(private readonly env: Record<string, string>) {}

  /** Starts a worker under `workerId` and waits until it reports ready. */
  async start(workerId: string): Promise<WorkerProcess> {
    const worker = WorkerProcess.start({ ...CHAOS_WORKER_SETTINGS, ...this.env, WORKER_ID: workerId });
    this.everyProcess.push(worker);
    this.current.set(workerId, worker);
    await worker.waitUntilReady(READY_TIMEOUT_MS);
    return worker;
  }

  worker(workerId: string): WorkerProcess {
    const worker = this.current.get(workerId);
    if (!worker) throw new Error(`no worker ${workerId} in the fleet`);
    return worker;
  }

  get workerIds(): string[] {
    return [...this.current.keys()];
  }

  /** Waits until every current worker answers /ready with 200 (after a broker or database restart). */
  async waitAllReady(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    await Promise.all([...this.current.values()].map((worker) => worker.waitUntilReady(timeoutMs)));
  }

  /** The current worker holding the most unacked messages, polled briefly so that a fault lands mid-batch. */
  async busiestWorker(waitMs = 5000): Promise<{ workerId: string; inFlight: number }> {
    let busiest = { workerId: this.workerIds[0]!, inFlight: 0 };
    const deadline = Date.now() + waitMs;
    while (busiest.inFlight === 0 && Date.now() < deadline) {
      for (const workerId of this.workerIds) {
        const inFlight = await inFlightOf(this.worker(workerId));
        if (inFlight > busiest.inFlight) busiest = { workerId, inFlight };
      }
      if (busiest.inFlight === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return busiest;
  }

  /** Takes `workerId` out of the fleet without a replacement. */
  retire(workerId: string): WorkerProcess {
    const worker = this.worker(workerId);
    this.current.delete(workerId);
    return worker;
  }

  /** SIGTERMs every current worker and waits for all of them to exit. */
  async stopAll(timeoutMs = STOP_TIMEOUT_MS): Promise<Map<string, WorkerExit>> {
    const workers = [...this.current.entries()];
    for (const [, worker] of workers) worker.sigterm();
    const exits = await Promise.all(workers.map(([, worker]) => worker.waitForExit(timeoutMs)));
    this.current.clear();
    return new Map(workers.map(([workerId], index) => [workerId, exits[index]!]));
  }

  /** Last resort for a failed run: no worker outlives the test. */
  async killAll(): Promise<void> {
    for (const worker of this.everyProcess) worker.kill('SIGKILL');
    await Promise.all(this.everyProcess.map((worker) => worker.waitForExit(10_000)));
  }

  /** Writes each process's whole output to `<directory>/<workerId>-<pid>.log`, for a look afterwards. */
  async saveOutput(directory: string): Promise<void> {
    await mkdir(directory, { recursive: true });
    for (const worker of this.everyProcess) {
      await writeFile(join(directory, `${worker.name}-${worker.pid}.log`), `${worker.lines.join('\n')}\n`);
    }
    console.log(`worker output saved in ${directory}`);
  }

  /** One report line per process: its exit, what it settled, how many warn and error lines it wrote. */
  summaryLines(): string[] {
    const summaries = this.summaries();
    const width = Math.max(...summaries.map((summary) => summary.workerId.length));
    return summaries.map(
      (summary) =>
        `  ${summary.workerId.padEnd(width)} pid ${summary.pid} exit ${summary.exit}; settled ${JSON.stringify(summary.settled)}; ` +
        `${summary.warnLines} warn, ${summary.errorLines} error lines`,
    );
  }

  summaries(): WorkerSummary[] {
    return this.everyProcess.map((worker) => {
      const settled = { confirmed: 0, duplicate: 0, rejected: 0, retried: 0 };
      for (const entry of worker.logEntries('settled ')) {
        for (const key of Object.keys(settled) as (keyof typeof settled)[]) {
          settled[key] += typeof entry[key] === 'number' ? entry[key] : 0;
        }
      }
      const exit = worker.exitStatus;
      return {
        workerId: worker.name,
        pid: worker.pid,
        exit: exit ? (exit.signal ?? `code ${exit.code}`) : 'running',
        settled,
        errorLines: worker.lines.filter((line) => /"level":"(error|fatal)"/.test(line)).length,
        warnLines: worker.lines.filter((line) => line.includes('"level":"warn"')).length,
      };
    });
  }
}

/** The private PostgreSQL of a chaos run, migrated, with a small pool of the test's own for the figures. */
export interface OrdersDatabase<Server extends { destroy(): Promise<void> } = PrivatePostgres> {
  server: Server;
  url: string;
  sql: pg.Pool;
}

async function startOrdersDatabase(): Promise<OrdersDatabase> {
  const server = await PrivatePostgres.start();
  const url = server.url('flashsale');
  try {
    await applyMigrations(url);
  } catch (error) {
    await server.destroy();
    throw error;
  }
  return { server, url, sql: new pg.Pool({ connectionString: url, max: 2 }) };
}

/**
 * What a chaos scenario starts, each part set once it is up, and the timings for its report; the afterAll of
 * `runChaosScenario` takes down whatever is set, whether the scenario finished or not.
 */
export class ChaosRun<Broker extends { destroy(): Promise<void> }> {
  readonly timings: [string, string | number][] = [];
  broker: Broker | undefined;
  /** Its server is whatever the scenario started (a PostgreSQL, a primary with its standby): destroyed after. */
  database: OrdersDatabase<{ destroy(): Promise<void> }> | undefined;
  channel: PurchaseChannel | undefined;
  fleet: ChaosFleet | undefined;

  /** Starts the broker with `startBroker` and a migrated PostgreSQL side by side. */
  async startServers(
    startBroker: () => Promise<Broker>,
  ): Promise<{ broker: Broker; database: OrdersDatabase }> {
    const [broker, database] = await Promise.all([startBroker(), startOrdersDatabase()]);
    [this.broker, this.database] = [broker, database];
    return { broker, database };
  }

  /** A fleet (no worker started yet) consuming the purchase queue from `rabbitmqUrl` into the run's database. */
  newFleet(rabbitmqUrl: string): ChaosFleet {
    this.fleet = new ChaosFleet({
      RABBITMQ_URL: rabbitmqUrl,
      DATABASE_URL: this.database!.url,
      PURCHASE_QUEUE: CHAOS_QUEUES.purchase,
    });
    return this.fleet;
  }

  /** The orders in the run's database now. */
  orderCount(): Promise<number> {
    return orderCount(this.database!.sql);
  }

  /**
   * Waits until the orders have grown past `ordersBefore` by a batch's worth of `purchases` (a tenth of them,
   * at most BATCH_SIZE), so that `fault` lands with batches in flight; resolves with the order count then.
   */
  async ordersGrownBeforeFault(
    ordersBefore: number,
    purchases: number,
    fault: string,
    timeoutMs: number,
  ): Promise<number> {
    const batchSize = Number(CHAOS_WORKER_SETTINGS.BATCH_SIZE);
    const step = Math.max(1, Math.min(batchSize, Math.floor(purchases / 10)));
    return waitFor(
      `orders to grow by ${step} before "${fault}"`,
      async () => {
        const orders = await this.orderCount();
        return orders >= ordersBefore + step && orders;
      },
      { timeoutMs, intervalMs: 10 },
    );
  }

  /**
   * Waits until the purchase queue is empty and the order count has not moved for QUIET_PERIOD_MS, so that
   * the figures are final; resolves with the time that took.
   */
  async settle(timeoutMs: number): Promise<number> {
    const startedMs = Date.now();
    let lastOrders = -1;
    let quietSinceMs = Date.now();
    await waitFor(
      'the purchase queue to empty and the order count to stay put',
      async () => {
        const [ready, orders] = [await this.channel!.depth(CHAOS_QUEUES.purchase), await this.orderCount()];
        if (ready > 0 || orders !== lastOrders) {
          lastOrders = orders;
          quietSinceMs = Date.now();
        }
        return Date.now() - quietSinceMs >= QUIET_PERIOD_MS;
      },
      { timeoutMs, intervalMs: 250 },
    );
    return Date.now() - startedMs;
  }
}

/**
 * The beforeAll and afterAll of a chaos suite: runs `scenario` once and prints `report` whatever happened
 * (with each worker's last output when the scenario failed); afterwards kills every worker still running,
 * saves their output when CHAOS_LOG_DIR is set, and closes the channel, the pool and the servers of `run`.
 */
export function runChaosScenario<Broker extends { destroy(): Promise<void> }>(
  run: ChaosRun<Broker>,
  scenario: () => Promise<void>,
  report: () => void,
): void {
  beforeAll(async () => {
    try {
      await scenario();
    } catch (error) {
      for (const worker of run.fleet?.everyProcess ?? []) {
        console.error(`--- ${worker.name} (pid ${worker.pid}), last output:\n${worker.tail(30)}`);
      }
      throw error;
    } finally {
      report();
    }
  });

  afterAll(async () => {
    const { fleet, channel, database, broker } = run;
    await fleet?.killAll();
    if (process.env.CHAOS_LOG_DIR) await fleet?.saveOutput(process.env.CHAOS_LOG_DIR);
    await channel?.close().catch((error: Error) => console.error(`closing the channel: ${error.message}`));
    await database?.sql.end();
    await Promise.all([broker?.destroy(), database?.server.destroy()]);
  });
}
