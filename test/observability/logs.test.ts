import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../support/harness.js';
import { purchase, TestWorld } from '../support/test-worker.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = join(ROOT, 'dist/src/main.js');
// The built files whose behaviour these tests prove; a build older than its source would prove nothing.
const PROVEN_SOURCES = [
  'src/main.ts',
  'src/observability/log-redaction.ts',
  'src/observability/observability.module.ts',
  'src/purchases/outcome.reporter.ts',
];

const PASSWORD = 's3cretpw';

interface LogLine {
  level: string;
  time: number;
  worker: string;
  msg: string;
  context?: string;
  [field: string]: unknown;
}

function assertBuilt(): void {
  for (const source of PROVEN_SOURCES) {
    const built = join(ROOT, 'dist', source.replace(/\.ts$/, '.js'));
    if (!existsSync(built) || statSync(built).mtimeMs < statSync(join(ROOT, source)).mtimeMs) {
      throw new Error(
        `${built} is missing or older than ${source}: run npx tsc -p tsconfig.build.json first`,
      );
    }
  }
}

/** `node dist/src/main.js` with only the given environment; collects its stdout lines and stderr. */
class WorkerProcess {
  readonly lines: LogLine[] = [];
  readonly unparsed: string[] = [];
  stderr = '';
  private readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line) as LogLine);
      } catch {
        this.unparsed.push(line);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static start(env: Record<string, string>): WorkerProcess {
    const child = spawn(process.execPath, [MAIN], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HTTP_PORT: '0', SHUTDOWN_DEADLINE_MS: '10000', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new WorkerProcess(child);
  }

  /** Everything the process wrote, stdout and stderr. */
  get output(): string {
    return [...this.lines.map((line) => JSON.stringify(line)), ...this.unparsed, this.stderr].join('\n');
  }

  async port(): Promise<number> {
    const listening = await this.waitForLine('http listening', (line) => line.msg === 'http listening');
    return listening.port as number;
  }

  waitForLine(what: string, matches: (line: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    return waitFor(`a log line: ${what}`, () => this.lines.find(matches), { timeoutMs });
  }

  /** SIGTERM, as an orchestrator stops a worker; resolves with the exit code. */
  stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

const fromContexts = (lines: LogLine[], contexts: string[], level: string) =>
  lines.filter((line) => line.level === level && contexts.includes(line.context ?? ''));

describe("the worker's JSON logs", () => {
  let world: TestWorld;
  let worker: WorkerProcess;
  let workerEnv: Record<string, string>;
  const started: WorkerProcess[] = [];
  const saleId = randomUUID();

  beforeAll(async () => {
    assertBuilt();
    world = await TestWorld.create('logs');
    // Trust authentication ignores the password; it is there to be hidden.
    const databaseUrl = new URL(world.db.url);
    databaseUrl.password = PASSWORD;
    workerEnv = {
      RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:5672',
      DATABASE_URL: databaseUrl.toString(),
      PURCHASE_QUEUE: world.queue,
      LOG_LEVEL: 'info',
      WORKER_ID: 'logs-info',
      BATCH_WAIT_MS: '5',
    };
    worker = WorkerProcess.start(workerEnv);
    started.push(worker);
    await worker.waitForLine('consuming', (line) => line.msg.startsWith(`consuming from ${world.queue}`));
  });
  afterAll(async () => {
    for (const child of started) await child.stop();
    await world?.close();
  });

  it('writes every stdout line as one JSON object with level, time, worker and message', async () => {
    expect(await worker.port()).toBeGreaterThan(0);
    expect(worker.unparsed).toEqual([]);
    for (const line of worker.lines) {
      expect(line).toEqual(
        expect.objectContaining({ level: expect.any(String), time: expect.any(Number), worker: 'logs-info' }),
      );
      expect(typeof line.msg).toBe('string');
    }
  });

  it('names the message id and delivery tag of each dead-lettered message, and its sale and user when known', async () => {
    await world.sql.query(
      `ALTER TABLE orders ADD CONSTRAINT orders_refused_user CHECK (user_id <> 'user-refused')`,
    );
    await world.publishRaw(['not json'], { messageId: 'msg-not-json' });
    await world.publish([{ saleId, userId: 'user-late', timestamp: 'yesterday' }], {
      messageId: 'msg-bad-time',
    });
    await world.publish([purchase({ saleId, userId: 'user-refused' })], { messageId: 'msg-refused' });
    await world.deadLetters(3);

    const rejected = await waitFor('three dead-letter log lines', () => {
      const lines = fromContexts(worker.lines, ['PurchaseOutcome'], 'warn');
      return lines.length === 3 ? lines : undefined;
    });
    const byMessageId = new Map(rejected.map((line) => [line.messageId, line]));
    expect([...byMessageId.keys()].sort()).toEqual(['msg-bad-time', 'msg-not-json', 'msg-refused']);
    for (const line of rejected) {
      expect(line.deliveryTag).toEqual(expect.any(Number));
      expect(line.msg).toMatch(/^message dead-lettered: /);
    }
    expect(new Set(rejected.map((line) => line.deliveryTag)).size).toBe(3);
    expect(byMessageId.get('msg-not-json')?.code).toBe('NOT_JSON');
    expect(byMessageId.get('msg-bad-time')?.code).toBe('INVALID_FIELDS');
    expect(byMessageId.get('msg-refused')).toEqual(
      expect.objectContaining({ code: 'REFUSED_BY_DATABASE', saleId, userId: 'user-refused' }),
    );
  });

  it('logs nothing per message at info: 200 clean purchases add at most one summary line', async () => {
    const before = worker.lines.length;
    const startedAt = Date.now();
    await world.publish(Array.from({ length: 200 }, () => purchase({ saleId })));
    await waitFor('200 orders', async () => (await world.orders()) === 200);
    const during = worker.lines.slice(before);
    const elapsedIntervals = Math.ceil((Date.now() - startedAt) / 10_000);

    expect(during.filter((line) => line.level === 'info').length).toBeLessThanOrEqual(elapsedIntervals);
    expect(during.filter((line) => line.level === 'debug')).toEqual([]);
  });

  it('sums up what was settled at info, one line per interval and a last one at shutdown', async () => {
    expect(await worker.stop()).toBe(0);
    const outcomeLines = fromContexts(worker.lines, ['PurchaseOutcome', 'PurchaseBatcher'], 'info');
    expect(outcomeLines.length).toBeGreaterThanOrEqual(1);
    const total = (field: string) => outcomeLines.reduce((sum, line) => sum + Number(line[field] ?? 0), 0);
    for (const line of outcomeLines) expect(line.msg).toMatch(/^settled \d+ messages$/);
    expect({
      confirmed: total('confirmed'),
      duplicate: total('duplicate'),
      rejected: total('rejected'),
    }).toEqual({
      confirmed: 200,
      duplicate: 0,
      rejected: 3,
    });
  });

  it('logs each settled message at debug with its sale, user, message id and delivery tag', async () => {
    const debugWorker = WorkerProcess.start({ ...workerEnv, LOG_LEVEL: 'debug', WORKER_ID: 'logs-debug' });
    started.push(debugWorker);
    await debugWorker.waitForLine('consuming', (line) =>
      line.msg.startsWith(`consuming from ${world.queue}`),
    );
    const sent = Array.from({ length: 5 }, (_, index) => ({
      body: purchase({ saleId }),
      messageId: `msg-debug-${index}`,
    }));
    for (const { body, messageId } of sent) await world.publish([body], { messageId });

    const confirmedLines = await waitFor('five per-message debug lines', () => {
      const lines = fromContexts(debugWorker.lines, ['PurchaseOutcome'], 'debug');
      return lines.length === 5 ? lines : undefined;
    });
    for (const { body, messageId } of sent) {
      expect(confirmedLines.find((line) => line.messageId === messageId)).toEqual(
        expect.objectContaining({
          msg: 'order confirmed',
          saleId,
          userId: body.userId,
          deliveryTag: expect.any(Number),
        }),
      );
    }
    expect(await debugWorker.stop()).toBe(0);
  });

  it('never writes a password from RABBITMQ_URL or DATABASE_URL, and shows the redacted URLs instead', async () => {
    const unreachable = WorkerProcess.start({
      ...workerEnv,
      RABBITMQ_URL: `amqp://guest:${PASSWORD}@127.0.0.1:1`,
      DATABASE_URL: `postgresql://postgres:${PASSWORD}@127.0.0.1:1/${world.db.name}`,
      WORKER_ID: 'logs-unreachable',
    });
    started.push(unreachable);
    await unreachable.waitForLine('the refused broker connection', (line) =>
      line.msg.startsWith('cannot connect to amqp://guest:***@127.0.0.1:1'),
    );
    const ready = await fetch(`http://127.0.0.1:${await unreachable.port()}/ready`);
    const readiness = await ready.text();
    expect(ready.status).toBe(503);
    expect(readiness).toContain('database unreachable');
    expect(readiness).not.toContain(PASSWORD);
    await unreachable.stop();

    expect(worker.output).toContain('connected to amqp://guest:***@127.0.0.1:5672');
    for (const child of started) {
      expect(child.output).not.toContain(PASSWORD);
      expect(child.output).not.toContain('guest:guest@');
    }
  });
});
