import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeOrderFor } from '../../src/common/broker-nodes.js';
import { waitFor } from '../support/harness.js';
import { purchase, TestWorld } from '../support/test-worker.js';
import { type LogEntry, WorkerProcess } from '../support/worker-process.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
// The built files whose behaviour these tests prove; a build older than its source would prove nothing.
const PROVEN_SOURCES = [
  'src/main.ts',
  'src/common/broker-nodes.ts',
  'src/common/log-redaction.ts',
  'src/observability/observability.module.ts',
  'src/audit/outcome.reporter.ts',
];

const PASSWORD = 's3cretpw';

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

/** The worker with PATH and `env` alone: no password can reach it from the test's own environment. */
const startWorker = (env: Record<string, string>) => WorkerProcess.start(env, { inheritEnvironment: false });

/** SIGTERM, as an orchestrator stops a worker; resolves with the exit code. */
async function stop(worker: WorkerProcess): Promise<number | null> {
  worker.sigterm();
  return (await worker.waitForExit()).code;
}

async function httpPortOf(worker: WorkerProcess): Promise<number | undefined> {
  await worker.waitForEntry('http listening', (entry) => entry.msg === 'http listening');
  return worker.port;
}

const startsWith = (entry: LogEntry, prefix: string) =>
  typeof entry.msg === 'string' && entry.msg.startsWith(prefix);

const fromContexts = (entries: LogEntry[], contexts: string[], level: string) =>
  entries.filter(
    (entry) => entry.level === level && typeof entry.context === 'string' && contexts.includes(entry.context),
  );

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
      SHUTDOWN_DEADLINE_MS: '10000',
    };
    worker = startWorker(workerEnv);
    started.push(worker);
    await worker.waitForEntry('consuming', (entry) => startsWith(entry, `consuming from ${world.queue}`));
  });
  afterAll(async () => {
    for (const child of started) await stop(child);
    await world?.close();
  });

  it('writes every stdout line as one JSON object with level, ISO 8601 time, worker and message', async () => {
    expect(await httpPortOf(worker)).toBeGreaterThan(0);
    expect(worker.stdoutNotJson).toEqual([]);
    for (const line of worker.entries) {
      expect(line).toEqual(
        expect.objectContaining({
          level: expect.any(String),
          time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
          worker: 'logs-info',
        }),
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
      const lines = fromContexts(worker.entries, ['PurchaseOutcome'], 'warn');
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
    const before = worker.entries.length;
    const startedAt = Date.now();
    await world.publish(Array.from({ length: 200 }, () => purchase({ saleId })));
    await waitFor('200 orders', async () => (await world.orders()) === 200);
    const during = worker.entries.slice(before);
    const elapsedIntervals = Math.ceil((Date.now() - startedAt) / 10_000);

    expect(during.filter((line) => line.level === 'info').length).toBeLessThanOrEqual(elapsedIntervals);
    expect(during.filter((line) => line.level === 'debug')).toEqual([]);
  });

  it('sums up what was settled at info, one line per interval and a last one at shutdown', async () => {
    expect(await stop(worker)).toBe(0);
    const outcomeLines = fromContexts(worker.entries, ['PurchaseOutcome', 'PurchaseBatcher'], 'info');
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
    const debugWorker = startWorker({ ...workerEnv, LOG_LEVEL: 'debug', WORKER_ID: 'logs-debug' });
    started.push(debugWorker);
    await debugWorker.waitForEntry('consuming', (entry) =>
      startsWith(entry, `consuming from ${world.queue}`),
    );
    const sent = Array.from({ length: 5 }, (_, index) => ({
      body: purchase({ saleId }),
      messageId: `msg-debug-${index}`,
    }));
    for (const { body, messageId } of sent) await world.publish([body], { messageId });

    const confirmedLines = await waitFor('five per-message debug lines', () => {
      const lines = fromContexts(debugWorker.entries, ['PurchaseOutcome'], 'debug');
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
    expect(await stop(debugWorker)).toBe(0);
  });

  it('writes at most MESSAGE_WARNINGS_PER_10S lines about single messages, then says how many it left out', async () => {
    const limited = startWorker({ ...workerEnv, MESSAGE_WARNINGS_PER_10S: '2', WORKER_ID: 'logs-limited' });
    started.push(limited);
    await limited.waitForEntry('consuming', (entry) => startsWith(entry, `consuming from ${world.queue}`));
    const poisonIds = Array.from({ length: 5 }, (_, index) => `msg-flood-${index}`);
    for (const messageId of poisonIds) await world.publishRaw(['not json'], { messageId });
    const deadLetters = await world.deadLetters(poisonIds.length);
    const deadLetterIds = deadLetters.map((message): unknown => message.properties.messageId);
    expect(deadLetterIds.sort()).toEqual(poisonIds);
    expect(await stop(limited)).toBe(0);

    const warnings = fromContexts(limited.entries, ['PurchaseOutcome'], 'warn');
    expect(warnings.filter((line) => startsWith(line, 'message dead-lettered: '))).toHaveLength(2);
    const leftOut = warnings.filter((line) => / were not logged one by one /.test(String(line.msg)));
    expect(leftOut).toEqual([expect.objectContaining({ rejected: 3, retried: 0 })]);
  });

  it('moves on to the next node of a RABBITMQ_URL list when one refuses, and names the node in use', async () => {
    const nodes = [`amqp://guest:${PASSWORD}@127.0.0.1:1`, 'amqp://guest:guest@127.0.0.1:5672'];
    // A name whose list starts at the refusing node, so the worker has to move on.
    let index = 0;
    while (nodeOrderFor(nodes, `logs-cluster-${index}`)[0] !== nodes[0]) index += 1;
    const onCluster = startWorker({
      ...workerEnv,
      RABBITMQ_URL: nodes.join(','),
      WORKER_ID: `logs-cluster-${index}`,
    });
    started.push(onCluster);
    await onCluster.waitUntilReady();
    expect(onCluster.logEntries('broker nodes, in the order this worker tries them')[0]?.msg).toContain(
      'amqp://guest:***@127.0.0.1:1, amqp://guest:***@127.0.0.1:5672',
    );
    expect(onCluster.logEntries('cannot connect to amqp://guest:***@127.0.0.1:1 (node 1 of 2)')).not.toEqual(
      [],
    );
    expect(onCluster.logEntries('connected to amqp://guest:***@127.0.0.1:5672 (node 2 of 2)')).not.toEqual(
      [],
    );
    const ready = (await (await fetch(`http://127.0.0.1:${onCluster.port}/ready`)).json()) as {
      details: { rabbitmq: { node: string } };
    };
    expect(ready.details.rabbitmq.node).toBe('127.0.0.1:5672');
    expect(await stop(onCluster)).toBe(0);
  });

  it('never writes a password from RABBITMQ_URL or DATABASE_URL, and shows the redacted URLs instead', async () => {
    const unreachable = startWorker({
      ...workerEnv,
      RABBITMQ_URL: `amqp://guest:${PASSWORD}@127.0.0.1:1`,
      DATABASE_URL: `postgresql://postgres:${PASSWORD}@127.0.0.1:1/${world.db.name}`,
      WORKER_ID: 'logs-unreachable',
    });
    started.push(unreachable);
    await unreachable.waitForEntry('the refused broker connection', (entry) =>
      startsWith(entry, 'cannot connect to amqp://guest:***@127.0.0.1:1'),
    );
    const ready = await fetch(`http://127.0.0.1:${await httpPortOf(unreachable)}/ready`);
    const readiness = await ready.text();
    expect(ready.status).toBe(503);
    expect(readiness).toContain('the database is unreachable');
    expect(readiness).not.toContain(PASSWORD);
    await stop(unreachable);

    const output = (child: WorkerProcess) => child.lines.join('\n');
    expect(output(worker)).toContain('connected to amqp://guest:***@127.0.0.1:5672');
    for (const child of started) {
      expect(output(child)).not.toContain(PASSWORD);
      expect(output(child)).not.toContain('guest:guest@');
    }
  });

  it('writes hostile strings from a message (escapes, bidi overrides, NUL) replaced, never raw', async () => {
    const hostileWorker = startWorker({ ...workerEnv, LOG_LEVEL: 'debug', WORKER_ID: 'logs-hostile' });
    started.push(hostileWorker);
    await hostileWorker.waitForEntry('consuming', (entry) =>
      startsWith(entry, `consuming from ${world.queue}`),
    );
    const hostile = '\u001b[2J\u202Eexe.txt\u0007\u0000';
    // Valid: stored as sent, logged made safe. Invalid: too long, and a hostile content type and message id.
    await world.publish([purchase({ saleId, userId: `valid${hostile.replace('\u0000', '')}` })], {
      messageId: `ok${hostile}`,
    });
    await world.publish([purchase({ saleId, userId: hostile.repeat(30) })], {
      messageId: `bad${hostile}`,
      contentType: `application/json${hostile}`,
    });
    await world.deadLetters(1);
    await waitFor('both outcomes logged', () =>
      ['order confirmed', 'message dead-lettered'].every((prefix) =>
        hostileWorker.entries.some((entry) => startsWith(entry, prefix)),
      ),
    );

    const unsafe = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;
    for (const line of hostileWorker.lines)
      expect({ line, unsafe: unsafe.test(line) }).toEqual({ line, unsafe: false });
    const stringsOf = (value: unknown): string[] =>
      typeof value === 'string'
        ? [value]
        : value !== null && typeof value === 'object'
          ? Object.values(value).flatMap(stringsOf)
          : [];
    for (const entry of hostileWorker.entries) {
      for (const text of stringsOf(entry)) {
        expect({ text, unsafe: /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u.test(text.replace(/\n/g, '')) }).toEqual(
          { text, unsafe: false },
        );
      }
    }
    expect(await stop(hostileWorker)).toBe(0);
  });
});
