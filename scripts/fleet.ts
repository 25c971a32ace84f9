import { type ChildProcess, spawn } from 'node:child_process';
import { WORKER_NODE_FLAGS } from '../src/node-flags.js';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { wholeNumber } from './loadtest.js';

/**
 * N workers as separate processes on one machine, like `docker compose up --scale worker=N`: each with its
 * own HTTP port and WORKER_ID, its log lines prefixed with its name, restarted with back-off when it crashes,
 * and stopped gracefully together.
 */
export interface FleetOptions {
  workers: number;
  /** HTTP port of worker-1, worker-i gets basePort + i − 1; 0 lets each worker pick a free port. */
  basePort: number;
  /** Environment of every worker, over this process's. */
  env?: NodeJS.ProcessEnv;
  /** The worker's entry point; default the built `src/main.js` beside this script's folder. */
  workerScript?: string;
  /** Where prefixed log lines go (default stdout); colours only on a TTY. */
  output?: NodeJS.WritableStream & { isTTY?: boolean };
  /** First restart delay after a crash, in milliseconds; doubles with each crash in a row. Default 500. */
  restartDelayMs?: number;
  /** Longest restart delay, in milliseconds. Default 30 000. */
  maxRestartDelayMs?: number;
  /** A worker that ran this long before crashing starts its back-off afresh, in milliseconds. Default 30 000. */
  stableAfterMs?: number;
}

/** A worker of the fleet as the fleet sees it. */
export interface FleetMember {
  readonly name: string;
  pid: number | undefined;
  port: number | undefined;
  restarts: number;
  state: 'running' | 'restarting' | 'stopped' | 'gave-up';
  exitCode: number | null;
}

/** Exit code of a worker refusing its settings: restarting cannot help. */
const EX_CONFIG = 78;
const COLOURS = [36, 33, 35, 32, 34, 31];
const DEFAULT_WORKER_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../src/main.js');

interface Slot {
  member: FleetMember;
  index: number;
  child?: ChildProcess;
  exited?: Promise<void>;
  startedAt: number;
  crashesInARow: number;
  restartTimer?: NodeJS.Timeout;
}

export class Fleet {
  private readonly slots: Slot[];
  private stopping: Promise<number> | undefined;
  private readonly colour: boolean;
  private readonly output: NodeJS.WritableStream;
  private readonly nameWidth: number;
  /** Called when a worker exits for good outside a stop (e.g. it refused its settings). */
  onGaveUp: (member: FleetMember) => void = () => undefined;

  constructor(private readonly options: FleetOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1)
      throw new RangeError('workers must be at least 1');
    this.output = options.output ?? process.stdout;
    this.colour = Boolean(options.output ? options.output.isTTY : process.stdout.isTTY);
    this.slots = Array.from({ length: options.workers }, (_, index) => ({
      index,
      member: {
        name: `worker-${index + 1}`,
        pid: undefined,
        port: undefined,
        restarts: 0,
        state: 'stopped',
        exitCode: null,
      },
      startedAt: 0,
      crashesInARow: 0,
    }));
    this.nameWidth = Math.max(5, ...this.slots.map((slot) => slot.member.name.length));
  }

  get members(): readonly FleetMember[] {
    return this.slots.map((slot) => slot.member);
  }

  /** Process ids of the workers running now. */
  pids(): number[] {
    return this.slots.flatMap((slot) =>
      slot.member.state === 'running' && slot.member.pid ? [slot.member.pid] : [],
    );
  }

  start(): void {
    if (this.stopping) throw new Error('the fleet is stopping');
    const script = this.options.workerScript ?? DEFAULT_WORKER_SCRIPT;
    // Without this check a missing build would look like a worker crashing over and over.
    if (!existsSync(script))
      throw new Error(`no worker at ${script}: build first (npx tsc -p tsconfig.build.json)`);
    for (const slot of this.slots) if (!slot.child) this.spawn(slot);
  }

  /** Resolves when every worker answers 200 on /ready; rejects after `timeoutMs` naming the ones that do not. */
  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answers = await Promise.all(this.slots.map((slot) => this.readiness(slot.member)));
      if (answers.every((answer) => answer === 'ready')) {
        this.say(`all ${this.slots.length} workers ready`);
        return;
      }
      if (Date.now() > deadline) {
        const waiting = this.slots.map((slot, index) => `${slot.member.name}: ${answers[index]}`).join(', ');
        throw new Error(`fleet not ready after ${timeoutMs} ms (${waiting})`);
      }
      await sleep(100);
    }
  }

  /**
   * Sends `signal` to every worker and waits until all have exited; resolves 0 when all exited 0, else 1.
   * Calling it again returns the same promise.
   */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number> {
    this.stopping ??= this.stopAll(signal);
    return this.stopping;
  }

  /** Ends every worker at once (a second Ctrl-C): nothing more is acked, the broker redelivers the rest. */
  kill(): void {
    for (const slot of this.slots) slot.child?.kill('SIGKILL');
  }

  private async stopAll(signal: NodeJS.Signals): Promise<number> {
    for (const slot of this.slots) {
      clearTimeout(slot.restartTimer);
      if (slot.member.state === 'restarting') slot.member.state = 'stopped';
      if (slot.member.state === 'running') slot.child?.kill(signal);
    }
    await Promise.all(this.slots.map((slot) => slot.exited ?? Promise.resolve()));
    // A worker that last ended on a signal has exitCode null: that is a failure too.
    const failed = this.slots.filter((slot) => slot.member.exitCode !== 0).map((slot) => slot.member.name);
    this.say(failed.length === 0 ? 'all workers stopped' : `stopped; not cleanly: ${failed.join(', ')}`);
    return failed.length === 0 ? 0 : 1;
  }

  private spawn(slot: Slot): void {
    const { member } = slot;
    const port = this.options.basePort === 0 ? 0 : this.options.basePort + slot.index;
    const child = spawn(
      process.execPath,
      [...WORKER_NODE_FLAGS, this.options.workerScript ?? DEFAULT_WORKER_SCRIPT],
      {
        env: { ...process.env, ...this.options.env, HTTP_PORT: String(port), WORKER_ID: member.name },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Own process group: a Ctrl-C on the terminal reaches the fleet only, which forwards one SIGTERM.
        detached: true,
      },
    );
    slot.child = child;
    slot.startedAt = Date.now();
    Object.assign(member, { pid: child.pid, port: port || undefined, state: 'running', exitCode: null });
    this.say(`${member.name} started, pid ${child.pid}${port ? `, port ${port}` : ''}`);
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => this.relay(member, line));
    }
    slot.exited = new Promise((resolveExit) => {
      child.on('exit', (code, signal) => {
        this.onExit(slot, code, signal);
        resolveExit();
      });
    });
    child.on('error', (error) => this.say(`${member.name} could not start: ${error.message}`));
  }

  private onExit(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    const { member } = slot;
    member.exitCode = code;
    member.pid = undefined;
    this.say(`${member.name} exited ${signal ? `on ${signal}` : `with code ${code}`}`);
    if (this.stopping || code === 0) {
      member.state = 'stopped';
      return;
    }
    if (code === EX_CONFIG) {
      member.state = 'gave-up';
      this.say(`${member.name} refused its settings; not restarting it`);
      this.onGaveUp(member);
      return;
    }
    if (Date.now() - slot.startedAt >= (this.options.stableAfterMs ?? 30_000)) slot.crashesInARow = 0;
    const delayMs = Math.min(
      this.options.maxRestartDelayMs ?? 30_000,
      (this.options.restartDelayMs ?? 500) * 2 ** slot.crashesInARow,
    );
    slot.crashesInARow += 1;
    member.state = 'restarting';
    this.say(`${member.name} crashed; restarting in ${delayMs} ms`);
    slot.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      member.restarts += 1;
      this.spawn(slot);
    }, delayMs);
  }

  private async readiness(member: FleetMember): Promise<string> {
    if (member.state !== 'running') return member.state;
    if (!member.port) return 'no port yet';
    try {
      const response = await fetch(`http://127.0.0.1:${member.port}/ready`, {
        signal: AbortSignal.timeout(2000),
      });
      return response.status === 200 ? 'ready' : `HTTP ${response.status}`;
    } catch (error) {
      return `unreachable (${(error as Error).message})`;
    }
  }

  private relay(member: FleetMember, line: string): void {
    // With HTTP_PORT=0 the worker picks its port and logs it: {"msg":"http listening","port":…}.
    if (line.includes('"http listening"')) {
      const port = Number(/"port":(\d+)/.exec(line)?.[1]);
      if (port > 0 && port !== member.port) {
        member.port = port;
        this.say(`${member.name} serving http on port ${port}`);
      }
    }
    this.write(member.name, line);
  }

  private say(message: string): void {
    this.write('fleet', message);
  }

  private write(name: string, line: string): void {
    const padded = name.padEnd(this.nameWidth);
    const index = name === 'fleet' ? -1 : Number(name.slice('worker-'.length)) - 1;
    const prefix = !this.colour
      ? padded
      : `\x1b[${index < 0 ? 1 : COLOURS[index % COLOURS.length]}m${padded}\x1b[0m`;
    this.output.write(`${prefix} | ${line}\n`);
  }
}

async function main(): Promise<void> {
  const flags = new Command('fleet')
    .description('Run N workers (node dist/src/main.js) as separate processes, each with its own HTTP port.')
    .option('--workers <n>', 'number of workers', wholeNumber('--workers'), 3)
    .option(
      '--base-port <port>',
      'HTTP port of worker-1 (worker-i: base + i - 1); 0 = free ports',
      wholeNumber('--base-port'),
      3001,
    )
    .parse()
    .opts<{ workers: number; basePort: number }>();
  const fleet = new Fleet({ workers: flags.workers, basePort: flags.basePort });
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      process.stderr.write(`fleet: ${signal} again, killing every worker\n`);
      fleet.kill();
      process.exit(1);
    }
    void fleet.stop('SIGTERM').then((code) => process.exit(code));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  // Workers live in their own process groups: never leave them behind if the fleet itself goes.
  process.on('exit', () => fleet.kill());
  fleet.onGaveUp = () => void fleet.stop('SIGTERM').then(() => process.exit(EX_CONFIG));
  fleet.start();
  // Not ready in time is worth saying, not worth stopping for: workers keep retrying their dependencies.
  await fleet.ready().catch((error: Error) => process.stderr.write(`fleet: ${error.message}\n`));
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((error: Error) => {
    process.stderr.write(`fleet failed: ${error.stack ?? error.message}\n`);
    process.exitCode = 1;
  });
}
