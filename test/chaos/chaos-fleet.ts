import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type WorkerExit, WorkerProcess } from '../support/worker-process.js';

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

const READY_TIMEOUT_MS = 60_000;

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
  async stopAll(timeoutMs: number): Promise<Map<string, WorkerExit>> {
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
