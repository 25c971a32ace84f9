import { type ChildProcess, spawn } from 'node:child_process';
import { WORKER_NODE_FLAGS } from '../../src/node-flags.js';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

const PROJECT_ROOT = resolve(import.meta.dirname, '../..');
/** The built worker, as `npm start` runs it. */
export const WORKER_MAIN = resolve(PROJECT_ROOT, 'dist/src/main.js');

/** One pino JSON log line, parsed; its fields are whatever the worker wrote. */
export type LogEntry = Record<string, unknown>;

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A worker process that did not do what a test waited for; the message carries its last output lines. */
export class WorkerProcessError extends Error {
  override readonly name = 'WorkerProcessError';
}

export interface WorkerProcessOptions {
  /** Script to run instead of the built worker (a test's stand-in). */
  script?: string;
  /** Label for messages; default the WORKER_ID in `env`, else the pid. */
  name?: string;
  /**
   * Whether the worker inherits this process's environment (default true). Without it, the worker gets PATH
   * and `env` alone, so a test knows every setting and secret it could print.
   */
  inheritEnvironment?: boolean;
}

const POLL_INTERVAL_MS = 50;

const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

/** The environment a worker starts from, before its own settings go over it. */
function baseEnvironment(inherit: boolean): NodeJS.ProcessEnv {
  if (!inherit) return { PATH: process.env.PATH ?? '' };
  // The test runner's NODE_OPTIONS (--experimental-vm-modules) is no business of the worker's.
  const inherited = { ...process.env };
  delete inherited.NODE_OPTIONS;
  return inherited;
}

/** A pino JSON log line as an object; undefined for any other output (a stack trace, a console.error). */
function parseLogEntry(line: string): LogEntry | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const entry: unknown = JSON.parse(line);
    return entry && typeof entry === 'object' ? (entry as Record<string, unknown>) : undefined;
  } catch (error) {
    if (error instanceof SyntaxError) return undefined; // output that merely starts with a brace
    throw error;
  }
}

/**
 * One worker as a separate OS process, as a deployment runs it: spawned with its own environment, its output
 * kept line by line for assertions and for failure messages, killable with any signal.
 */
export class WorkerProcess {
  /** Every line the process printed, stdout and stderr interleaved as they arrived. */
  readonly lines: string[] = [];
  /** Every JSON log line the process printed, parsed, in order. */
  readonly entries: LogEntry[] = [];
  /** Lines on stdout that are not a JSON log entry (a worker that logs as it should writes none). */
  readonly stdoutNotJson: string[] = [];
  readonly name: string;
  private readonly child: ChildProcess;
  private readonly exited: Promise<WorkerExit>;
  private exit: WorkerExit | undefined;
  private httpPort: number | undefined;

  private constructor(env: Record<string, string>, options: WorkerProcessOptions) {
    const script = options.script ?? WORKER_MAIN;
    if (!existsSync(script)) {
      throw new WorkerProcessError(`${script} is missing: build it with npx tsc -p tsconfig.build.json`);
    }
    this.child = spawn(process.execPath, [...WORKER_NODE_FLAGS, script], {
      cwd: PROJECT_ROOT,
      env: { ...baseEnvironment(options.inheritEnvironment ?? true), HTTP_PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.name = options.name ?? env.WORKER_ID ?? `worker pid ${this.child.pid}`;
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.onLine(line, 'stdout'));
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.onLine(line, 'stderr'));
    this.exited = new Promise((resolveExit) =>
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolveExit(this.exit);
      }),
    );
  }

  /**
   * Spawns the worker; `env` goes over this process's environment (or over PATH alone, see
   * `inheritEnvironment`), HTTP_PORT defaults to 0.
   */
  static start(env: Record<string, string>, options: WorkerProcessOptions = {}): WorkerProcess {
    return new WorkerProcess(env, options);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The HTTP port the worker logged, once it has. */
  get port(): number | undefined {
    return this.httpPort;
  }

  /** How the process ended; undefined while it runs. */
  get exitStatus(): WorkerExit | undefined {
    return this.exit;
  }

  private onLine(line: string, stream: 'stdout' | 'stderr'): void {
    this.lines.push(line);
    const entry = parseLogEntry(line);
    if (!entry) {
      if (stream === 'stdout') this.stdoutNotJson.push(line);
      return;
    }
    this.entries.push(entry);
    if (this.httpPort === undefined && entry.msg === 'http listening' && typeof entry.port === 'number') {
      this.httpPort = entry.port;
    }
  }

  /** The last `count` output lines, for failure messages. */
  tail(count = 40): string {
    return this.lines.slice(-count).join('\n');
  }

  /** The JSON log lines whose `msg` contains `text`. */
  logEntries(text: string): LogEntry[] {
    return this.entries.filter((entry) => typeof entry.msg === 'string' && entry.msg.includes(text));
  }

  /** Polls until a JSON log line matches; fails, with the output, if none has after `timeoutMs`. */
  async waitForEntry(
    what: string,
    matches: (entry: LogEntry) => boolean,
    timeoutMs = 15_000,
  ): Promise<LogEntry> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const entry = this.entries.find(matches);
      if (entry) return entry;
      if (Date.now() >= deadline) throw this.failure(`logged no ${what} within ${timeoutMs} ms`);
      await sleep(POLL_INTERVAL_MS);
    }
  }

  private failure(what: string): WorkerProcessError {
    const state = this.exit ? `exited (code ${this.exit.code}, signal ${this.exit.signal})` : 'still running';
    return new WorkerProcessError(`${this.name} ${what}; it is ${state}. Last output:\n${this.tail()}`);
  }

  /** Polls GET /ready until it answers 200; fails early, with the output, if the process exits. */
  async waitUntilReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no HTTP port logged yet';
    while (Date.now() < deadline) {
      if (this.exit) throw this.failure('exited before it was ready');
      if (this.httpPort !== undefined) {
        try {
          const response = await fetch(`http://127.0.0.1:${this.httpPort}/ready`);
          const body = await response.text();
          if (response.status === 200) return;
          last = `GET /ready: ${response.status} ${body}`;
        } catch (error) {
          last = `GET /ready: ${(error as Error).message}`;
        }
      }
      await sleep(POLL_INTERVAL_MS);
    }
    throw this.failure(`was not ready within ${timeoutMs} ms (last: ${last})`);
  }

  /** GET /metrics: the Prometheus text. */
  async metrics(): Promise<string> {
    if (this.httpPort === undefined) throw this.failure('has not logged its HTTP port');
    const response = await fetch(`http://127.0.0.1:${this.httpPort}/metrics`);
    if (response.status !== 200) throw this.failure(`answered GET /metrics with ${response.status}`);
    return response.text();
  }

  /** Sends `signal`; a process that has already exited is left alone. */
  kill(signal: NodeJS.Signals): void {
    if (!this.exit) this.child.kill(signal);
  }

  /** Asks for a graceful shutdown, as `docker stop` and Kubernetes do. */
  sigterm(): void {
    this.kill('SIGTERM');
  }

  /** Resolves with how the process ended; fails, with the output, if it is still running after `timeoutMs`. */
  async waitForExit(timeoutMs = 30_000): Promise<WorkerExit> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(this.failure(`did not exit within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
