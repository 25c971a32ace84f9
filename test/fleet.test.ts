import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import {
  createTestDatabase,
  deleteWorkerQueues,
  TEST_RABBITMQ_URL,
  type TestDatabase,
  uniqueName,
  waitFor,
} from './support/harness.js';

const FLEET_SCRIPT = resolve(import.meta.dirname, '../dist/scripts/fleet.js');

/** `npm run fleet` as a child process, with the lines it printed. */
class RunningFleet {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;

  constructor(readonly process: ChildProcess) {
    createInterface({ input: process.stdout! }).on('line', (line) => this.lines.push(line));
    createInterface({ input: process.stderr! }).on('line', (line) => this.lines.push(line));
    this.exited = new Promise((resolveExit) => process.on('exit', (code) => resolveExit(code)));
  }

  /** Each time the fleet started this worker: its pid; and the last port it serves HTTP on. */
  pids(worker: string): number[] {
    return this.fleetLines(new RegExp(`^${worker} started, pid (\\d+)`)).map(Number);
  }

  port(worker: string): number | undefined {
    return this.fleetLines(new RegExp(`^${worker} serving http on port (\\d+)`))
      .map(Number)
      .at(-1);
  }

  fleetLines(pattern: RegExp): string[] {
    return this.lines.flatMap((line) => {
      const match = /^fleet\s*\| (.*)$/.exec(line)?.[1]?.match(pattern);
      return match?.[1] ? [match[1]] : [];
    });
  }
}

async function isReady(port: number | undefined): Promise<boolean> {
  if (!port) return false;
  const response = await fetch(`http://127.0.0.1:${port}/ready`);
  return response.status === 200;
}

describe('npm run fleet', () => {
  let database: TestDatabase;
  const queue = uniqueName('fsw.fleet');
  let fleet: RunningFleet;

  beforeAll(async () => {
    if (!existsSync(FLEET_SCRIPT))
      throw new Error(`${FLEET_SCRIPT} is missing: run npx tsc -p tsconfig.build.json`);
    database = await createTestDatabase('fleet');
    const child = spawn(process.execPath, [FLEET_SCRIPT, '--workers', '2', '--base-port', '0'], {
      env: {
        ...process.env,
        RABBITMQ_URL: TEST_RABBITMQ_URL,
        DATABASE_URL: database.url,
        PURCHASE_QUEUE: queue,
        LOG_LEVEL: 'info',
        SHUTDOWN_DEADLINE_MS: '10000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    fleet = new RunningFleet(child);
  });

  afterAll(async () => {
    if (fleet.process.exitCode === null) fleet.process.kill('SIGKILL');
    for (const worker of ['worker-1', 'worker-2']) {
      for (const pid of fleet.pids(worker)) {
        if (existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
      }
    }
    await deleteWorkerQueues(queue);
    await database.drop();
  });

  it('starts every worker with its own name and port, and all become ready', async () => {
    await waitFor(
      'both workers ready',
      async () => (await isReady(fleet.port('worker-1'))) && isReady(fleet.port('worker-2')),
      {
        timeoutMs: 30_000,
      },
    );
    expect(fleet.port('worker-1')).not.toBe(fleet.port('worker-2'));
    expect(fleet.lines.some((line) => /^worker-1\s*\| \{.*"worker":"worker-1"/.test(line))).toBe(true);
    expect(fleet.lines.some((line) => /^worker-2\s*\| \{.*"worker":"worker-2"/.test(line))).toBe(true);
  });

  it('restarts a worker that was killed, and it becomes ready again', async () => {
    const [killed] = fleet.pids('worker-1');
    const portBefore = fleet.port('worker-1');
    process.kill(killed!, 'SIGKILL');

    await waitFor('worker-1 to be started again', () => fleet.pids('worker-1').length === 2, {
      timeoutMs: 15_000,
    });
    expect(fleet.pids('worker-1')[1]).not.toBe(killed);
    await waitFor('worker-1 to serve again', () => fleet.port('worker-1') !== portBefore, {
      timeoutMs: 15_000,
    });
    await waitFor('worker-1 ready again', () => isReady(fleet.port('worker-1')), { timeoutMs: 30_000 });
    expect(fleet.pids('worker-2')).toHaveLength(1);
  });

  it('forwards SIGTERM to every worker and exits 0 once all have exited 0', async () => {
    fleet.process.kill('SIGTERM');
    expect(await fleet.exited).toBe(0);
    expect(fleet.fleetLines(/^(worker-\d) exited with code 0$/).sort()).toEqual(['worker-1', 'worker-2']);
    const running = [...fleet.pids('worker-1'), ...fleet.pids('worker-2')].filter((pid) =>
      existsSync(`/proc/${pid}`),
    );
    expect(running).toEqual([]);
  });
});
