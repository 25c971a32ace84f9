import type { WorkerProcess } from '../support/worker-process.js';

/** How often each worker's /ready is asked. */
export const SAMPLE_INTERVAL_MS = 500;
/** A /ready that does not answer within this counts as a failed sample (status 0). */
const SAMPLE_TIMEOUT_MS = 2000;

/** One answer of GET /ready: its status (0 when it gave none) and every `reason` in its body. */
export interface ReadinessSample {
  atMs: number;
  status: number;
  reasons: string[];
}

/** Every `reason` string anywhere in a terminus body (`details.<indicator>.reason`). */
function reasonsIn(body: unknown): string[] {
  const details = (body as { details?: Record<string, { reason?: unknown }> } | null)?.details ?? {};
  return Object.entries(details)
    .filter(([, indicator]) => typeof indicator?.reason === 'string')
    .map(([name, indicator]) => `${name}: ${String(indicator.reason)}`);
}

async function sample(worker: WorkerProcess): Promise<ReadinessSample> {
  const atMs = Date.now();
  try {
    const response = await fetch(`http://127.0.0.1:${worker.port}/ready`, {
      signal: AbortSignal.timeout(SAMPLE_TIMEOUT_MS),
    });
    const text = await response.text();
    const body: unknown = text.startsWith('{') ? JSON.parse(text) : null;
    return { atMs, status: response.status, reasons: reasonsIn(body) };
  } catch (error) {
    return { atMs, status: 0, reasons: [`no answer: ${(error as Error).message}`] };
  }
}

/**
 * Asks every worker's /ready every SAMPLE_INTERVAL_MS until stopped, keeping every answer: what an orchestrator
 * would have seen, for the honesty of readiness during a fault.
 */
export class ReadinessSampler {
  readonly samples = new Map<string, ReadinessSample[]>();
  private timer: NodeJS.Timeout | undefined;
  private pending: Promise<unknown> = Promise.resolve();

  constructor(private readonly workers: WorkerProcess[]) {
    for (const worker of workers) this.samples.set(worker.name, []);
  }

  start(): void {
    const tick = () => {
      this.pending = Promise.all(
        this.workers.map(async (worker) => this.samples.get(worker.name)!.push(await sample(worker))),
      );
      this.timer = setTimeout(tick, SAMPLE_INTERVAL_MS);
    };
    tick();
  }

  /** Stops sampling; resolves once the samples under way are in. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.pending;
  }

  /** The worker's samples taken from `fromMs` up to `toMs`. */
  between(workerName: string, fromMs: number, toMs = Infinity): ReadinessSample[] {
    return this.samples.get(workerName)!.filter((taken) => taken.atMs >= fromMs && taken.atMs <= toMs);
  }

  /** From `fromMs` until the worker's first sample at or after it that `matches`; undefined if none did. */
  firstAfter(
    workerName: string,
    fromMs: number,
    matches: (taken: ReadinessSample) => boolean,
  ): number | undefined {
    const found = this.between(workerName, fromMs).find(matches);
    return found && found.atMs - fromMs;
  }
}
