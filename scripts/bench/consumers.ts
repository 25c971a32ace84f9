import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Fleet } from '../fleet.js';
import type { LatencyPercentiles } from './order-stats.js';

/** What the ceiling consumer reports once it has acked every message. */
export interface CeilingDone {
  acked: number;
  firstAckAt: number;
  lastAckAt: number;
  /** When the 10th and the 90th percent of the messages were acked, epoch milliseconds. */
  steadyWindow: { fromMs: number; toMs: number };
  latencyMs?: LatencyPercentiles;
}

/** The consumers of one scenario, whatever they are: a reference child process or a fleet of workers. */
export interface BenchConsumers {
  pids(): number[];
  ready(timeoutMs: number): Promise<void>;
  /** The ceiling's own report; undefined for consumers measured through the orders table. */
  readonly done?: Promise<CeilingDone>;
  stop(): Promise<void>;
}

export interface ConsumerSettings {
  rabbitUrl: string;
  queue: string;
  databaseUrl?: string;
  prefetch: number;
  poolSize: number;
  /** Where the consumers' own output goes. */
  log: NodeJS.WritableStream;
}

const HERE = dirname(fileURLToPath(import.meta.url));

/** A reference consumer (ceiling-consumer.js, per-message-consumer.js) speaking JSON lines on stdout. */
function referenceConsumer(script: string, args: string[], log: NodeJS.WritableStream): BenchConsumers {
  const child: ChildProcess = spawn(process.execPath, [join(HERE, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const events = new Map<string, (event: Record<string, unknown>) => void>();
  const next = (name: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      events.set(name, resolve);
      void exited.then(() => reject(new Error(`${script} exited before "${name}" (see the bench log)`)));
    });
  const ready = next('ready');
  const done = next('done') as Promise<unknown> as Promise<CeilingDone>;
  // Awaited later or never (only the ceiling reports done): an early exit must not be an unhandled rejection.
  ready.catch(() => undefined);
  done.catch(() => undefined);
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const event = line.startsWith('{') ? (JSON.parse(line) as Record<string, unknown>) : undefined;
    if (typeof event?.event === 'string') events.get(event.event)?.(event);
    else log.write(`${script} | ${line}\n`);
  });
  child.stderr?.on('data', (chunk: Buffer) => log.write(`${script} | ${chunk.toString()}`));
  return {
    pids: () => (child.exitCode === null && child.pid ? [child.pid] : []),
    ready: async (timeoutMs) => {
      await Promise.race([ready, timeoutAfter(timeoutMs, `${script} ready`)]);
    },
    done: script.startsWith('ceiling') ? done : undefined,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export function ceilingConsumer(settings: ConsumerSettings, expect: number, skip = 0): BenchConsumers {
  return referenceConsumer(
    'ceiling-consumer.js',
    [
      '--url',
      settings.rabbitUrl,
      '--queue',
      settings.queue,
      '--prefetch',
      String(settings.prefetch),
      '--expect',
      String(expect),
      '--skip',
      String(skip),
    ],
    settings.log,
  );
}

export function perMessageConsumer(settings: ConsumerSettings): BenchConsumers {
  return referenceConsumer(
    'per-message-consumer.js',
    [
      ...[
        '--url',
        settings.rabbitUrl,
        '--queue',
        settings.queue,
        '--database-url',
        settings.databaseUrl ?? '',
      ],
      ...['--prefetch', String(settings.prefetch), '--pool-size', String(settings.poolSize)],
    ],
    settings.log,
  );
}

export function workerFleet(settings: ConsumerSettings, workers: number): BenchConsumers {
  const fleet = new Fleet({
    workers,
    basePort: 0,
    output: settings.log,
    env: {
      RABBITMQ_URL: settings.rabbitUrl,
      DATABASE_URL: settings.databaseUrl,
      PURCHASE_QUEUE: settings.queue,
      PREFETCH: String(settings.prefetch),
      DB_POOL_SIZE: String(settings.poolSize),
    },
  });
  // Workers run in their own process groups: if the bench goes, they must not stay behind.
  const killOnExit = () => fleet.kill();
  process.once('exit', killOnExit);
  fleet.start();
  return {
    pids: () => fleet.pids(),
    ready: (timeoutMs) => fleet.ready(timeoutMs),
    stop: async () => {
      const code = await fleet.stop('SIGTERM');
      process.removeListener('exit', killOnExit);
      if (code !== 0) settings.log.write(`fleet | stopped with code ${code}\n`);
    },
  };
}

export async function timeoutAfter(timeoutMs: number, what: string): Promise<never> {
  await new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
