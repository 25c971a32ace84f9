import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The repository: two folders up from scripts/loadtest/, three from its build in dist/scripts/loadtest/. */
const SCRIPTS = resolve(import.meta.dirname, '..');
const REPOSITORY =
  basename(resolve(SCRIPTS, '..')) === 'dist' ? resolve(SCRIPTS, '../..') : resolve(SCRIPTS, '..');
/** The example API's built entry point. */
export const EXAMPLE_API_MAIN = resolve(REPOSITORY, 'examples/flash-sale-api/dist/main.js');

export interface ExampleApiProcessOptions {
  /** The URL the API is to answer on: its port becomes HTTP_PORT. */
  url: string;
  /** Environment of the API over this process's (RABBITMQ_URL, PURCHASE_QUEUE…). */
  env?: NodeJS.ProcessEnv;
  /** Where its output goes. */
  output: NodeJS.WritableStream;
}

/** The example API (examples/flash-sale-api) as a child process, as the demo runs it beside the fleet. */
export class ExampleApiProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  /** Starts the API and resolves once its /health answers 200; rejects after `timeoutMs` or if it exits. */
  static async start(options: ExampleApiProcessOptions, timeoutMs = 30_000): Promise<ExampleApiProcess> {
    if (!existsSync(EXAMPLE_API_MAIN))
      throw new Error(`no example API at ${EXAMPLE_API_MAIN}: build first (npm run build)`);
    const port = new URL(options.url).port || '80';
    const child = spawn(process.execPath, [EXAMPLE_API_MAIN], {
      env: { ...process.env, ...options.env, HTTP_PORT: port },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(options.output, { end: false });
    child.stderr?.pipe(options.output, { end: false });
    const api = new ExampleApiProcess(child, options.url);
    try {
      await api.healthy(timeoutMs);
    } catch (error) {
      await api.stop();
      throw error;
    }
    return api;
  }

  /** SIGTERM, then the exit code once it has drained and exited (null if the signal ended it). */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    // 'close', not 'exit': by then its last output has been read too.
    const closed = once(this.child, 'close');
    this.child.kill('SIGTERM');
    const [code] = (await closed) as [number | null];
    return code;
  }

  /** Signals it to stop without waiting (for a process that is exiting itself). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
  }

  private async healthy(timeoutMs: number): Promise<void> {
    const health = new URL('/health', this.url);
    const deadline = Date.now() + timeoutMs;
    let last: string;
    for (;;) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(
          `the example API exited (${this.child.exitCode ?? this.child.signalCode}) before it was healthy`,
        );
      }
      try {
        const response = await fetch(health, { signal: AbortSignal.timeout(2000) });
        if (response.ok) return;
        last = `${response.status} ${await response.text()}`;
      } catch (error) {
        last = (error as Error).message;
      }
      if (Date.now() > deadline) {
        throw new Error(`the example API at ${health.href} was not healthy within ${timeoutMs} ms (${last})`);
      }
      await sleep(250);
    }
  }
}
