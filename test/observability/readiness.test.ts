import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { METRIC } from '../../src/observability/metric-names.js';
import type { RunningWorker } from '../../src/worker.module.js';
import { TEST_RABBITMQ_URL, waitFor } from '../support/harness.js';
import { PrivatePostgres } from '../support/private-postgres.js';
import { purchase, TestWorld } from '../support/test-worker.js';

interface Indicator {
  status: 'up' | 'down';
  reason?: string;
  state?: string;
  pausedFor?: string[];
}

interface Probe {
  status: number;
  body: { status: string; info?: Record<string, Indicator>; error?: Record<string, Indicator> };
}

async function probe(worker: RunningWorker, path: '/health' | '/ready'): Promise<Probe> {
  const response = await fetch(`http://127.0.0.1:${worker.port}${path}`);
  return { status: response.status, body: (await response.json()) as Probe['body'] };
}

/**
 * Probes /ready, checks its HTTP status and the broker indicator (Terminus lists an indicator that is up
 * under `info`, one that is down under `error`), and returns the body for further checks.
 */
async function expectReadiness(
  worker: RunningWorker,
  status: 200 | 503,
  rabbitmq: { status: Indicator['status'] } & Record<string, unknown>,
): Promise<Probe['body']> {
  const ready = await probe(worker, '/ready');
  expect(ready.status).toBe(status);
  const listed = rabbitmq.status === 'up' ? ready.body.info : ready.body.error;
  expect(listed?.rabbitmq).toEqual(expect.objectContaining(rabbitmq));
  return ready.body;
}

/** The value of an unlabelled sample in the worker's /metrics. */
async function gauge(worker: RunningWorker, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('health and readiness', () => {
  let postgres: PrivatePostgres;
  let world: TestWorld;
  let worker: RunningWorker;
  // Connections of the test's own pool die with the server on purpose; the pool replaces them.
  const poolErrors: Error[] = [];

  beforeAll(async () => {
    postgres = await PrivatePostgres.start();
    world = await TestWorld.create('readiness', TEST_RABBITMQ_URL, postgres.url('postgres'));
    world.sql.on('error', (error) => poolErrors.push(error));
    worker = await world.startWorker({
      CIRCUIT_FAILURE_THRESHOLD: 1,
      RETRY_BASE_MS: 50,
      RETRY_MAX_MS: 300,
      DB_CONNECT_TIMEOUT_MS: 500,
      AUDIT_FLUSH_INTERVAL_MS: 100,
    });
  });
  afterAll(async () => {
    await postgres?.start();
    await world?.close();
    await postgres?.destroy();
  });

  it('is live and ready while consuming with the database reachable, naming the broker node in use', async () => {
    expect(await probe(worker, '/health')).toEqual({
      status: 200,
      body: expect.objectContaining({ status: 'ok' }),
    });
    const ready = await expectReadiness(worker, 200, {
      status: 'up',
      state: 'consuming',
      node: expect.stringMatching(/^[\w.-]+:\d+$/),
    });
    expect(ready.info?.database).toEqual(expect.objectContaining({ status: 'up' }));
  });

  it('turns unready naming the database while it is away, stays live, and turns ready again when it returns', async () => {
    await postgres.stop();
    const unready = await waitFor('/ready to answer 503', async () => {
      const ready = await probe(worker, '/ready');
      return ready.status === 503 ? ready : undefined;
    });
    expect(unready.body.error?.database?.status).toBe('down');
    expect(unready.body.error?.database?.reason).toMatch(/^the database is unreachable: /);
    expect(unready.body.info?.rabbitmq).toEqual(
      expect.objectContaining({ status: 'up', state: 'consuming' }),
    );
    expect((await probe(worker, '/health')).status).toBe(200);

    await postgres.start();
    const ready = await waitFor('/ready to answer 200 again', async () => {
      const answer = await probe(worker, '/ready');
      return answer.status === 200 ? answer : undefined;
    });
    expect(ready.body.info?.database?.status).toBe('up');
  });

  it('pauses consuming when a write finds the database away, reports it, and stores the purchase once on its return', async () => {
    await postgres.stop();
    const held = purchase({ saleId: randomUUID() });
    await world.publish([held]);

    await waitFor('the circuit open and the consumer paused in /metrics', async () => {
      const [paused, open] = [
        await gauge(worker, METRIC.consumerPaused),
        await gauge(worker, METRIC.circuitOpen),
      ];
      return paused === 1 && open === 1;
    });
    // The purchase stays in flight, unacked, until the database takes it.
    const unready = await expectReadiness(worker, 503, {
      status: 'down',
      state: 'paused',
      inFlight: 1,
      pausedFor: ['database circuit open'],
    });
    expect(unready.error?.database?.reason).toMatch(/; consuming paused, database circuit open for \d+ s$/);
    expect((await probe(worker, '/health')).status).toBe(200);

    await postgres.start();
    await waitFor('the consumer to resume', async () => (await gauge(worker, METRIC.consumerPaused)) === 0, {
      timeoutMs: 20_000,
    });
    await waitFor('the held purchase stored', async () => (await world.orders()) === 1, {
      timeoutMs: 20_000,
    });
    expect(await gauge(worker, METRIC.circuitOpen)).toBe(0);
    await waitFor('/ready to answer 200 again', async () => (await probe(worker, '/ready')).status === 200);
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
    expect(
      await world.count('SELECT count(*) FROM orders WHERE sale_id = $1 AND user_id = $2', [
        held.saleId,
        held.userId,
      ]),
    ).toBe(1);
    expect(await world.drainDeadLetters()).toHaveLength(0);
  });
});
