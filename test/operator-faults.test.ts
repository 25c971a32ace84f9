/**
 * What operators and locked-down deployments do to a running fleet: delete the dead-letter queue, grant a
 * consumer read and write but not configure, hold a lock on `orders`, flip pause and resume. Each on the
 * shared broker and database, in a vhost and a database of this file's own.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { METRIC } from '../src/observability/metric-names.js';
import type { TestWorker } from './support/test-worker.js';
import { uniqueName, waitFor } from './support/harness.js';
import { purchase, scrapedMetric, startTestWorker, TestWorld } from './support/test-worker.js';

const run = promisify(execFile);
const rabbitmqctl = (...args: string[]) => run('rabbitmqctl', ['-q', ...args]);

interface Indicator {
  status: 'up' | 'down';
  reason?: string;
}

async function probe(worker: TestWorker, path: '/health' | '/ready') {
  const response = await fetch(`http://127.0.0.1:${worker.port}${path}`);
  const body = (await response.json()) as { error?: Record<string, Indicator> };
  return { status: response.status, errors: body.error ?? {} };
}

describe('operator faults', () => {
  const vhost = uniqueName('fsw_vhost');
  const password = randomBytes(8).toString('hex');
  const consumerUser = uniqueName('fsw_consumer'); // read and write, no configure
  const blindUser = uniqueName('fsw_blind'); // write only: may not read the purchase queue
  const mutedUser = uniqueName('fsw_muted'); // read only, until an operator grants write
  const adminUrl = `amqp://guest:guest@127.0.0.1:5672/${vhost}`;
  const urlOf = (user: string) => `amqp://${user}:${password}@127.0.0.1:5672/${vhost}`;
  let world: TestWorld;

  beforeAll(async () => {
    await rabbitmqctl('add_vhost', vhost);
    await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
    for (const user of [consumerUser, blindUser, mutedUser]) await rabbitmqctl('add_user', user, password);
    await rabbitmqctl('set_permissions', '-p', vhost, consumerUser, '^$', '.*', '.*');
    await rabbitmqctl('set_permissions', '-p', vhost, blindUser, '^$', '.*', '^$');
    await rabbitmqctl('set_permissions', '-p', vhost, mutedUser, '^$', '^$', '.*');
    world = await TestWorld.create('operator_faults', adminUrl);
    // The queues are the publishing API's: declared before any worker, by a user who may.
    await world.declareTopology();
  });

  afterAll(async () => {
    await world?.close();
    for (const user of [consumerUser, blindUser, mutedUser])
      await rabbitmqctl('delete_user', user).catch(() => undefined);
    await rabbitmqctl('delete_vhost', vhost);
  });

  describe('with read and write permission but not configure', () => {
    let worker: TestWorker;

    beforeAll(async () => {
      worker = await world.startWorker({
        RABBITMQ_URL: urlOf(consumerUser),
        RETRY_BASE_MS: 50,
        RETRY_MAX_MS: 200,
        MAX_DELIVERIES: 1000,
        AUDIT_FLUSH_INTERVAL_MS: 50,
      });
    });
    // One worker at a time in this process: they share the process-wide metrics registry.
    afterAll(() => worker.stop('test end'));

    it('consumes the queues it finds and stores orders', async () => {
      await world.publish([purchase({ saleId: randomUUID() })]);
      await waitFor('the order', async () => (await world.orders()) === 1);
      expect((await probe(worker, '/ready')).status).toBe(200);
    });

    it('keeps poison on its queue while the DLQ is deleted, says so on /ready, and dead-letters it once the DLQ is back', async () => {
      const channel = await world.openChannel();
      await channel.deleteQueue(world.deadLetterQueue);
      await channel.close();
      const messageId = randomUUID();
      await world.publishRaw(['not json'], { messageId });

      // The worker may not declare the DLQ again: the message stays unacked, retried with back-off.
      await waitFor('the returned publishes to be counted', async () => {
        const returned = await scrapedMetric(
          worker,
          METRIC.publishesReturned,
          `queue="${world.deadLetterQueue}"`,
        );
        return returned >= 2;
      });
      const ready = await probe(worker, '/ready');
      expect(ready.status).toBe(503);
      expect(ready.errors.rabbitmq?.reason).toContain(`queue ${world.deadLetterQueue} is missing`);
      expect(await scrapedMetric(worker, METRIC.queueMissing, `queue="${world.deadLetterQueue}"`)).toBe(1);
      expect(worker.worker.inFlight + (await world.queueDepth())).toBe(1);

      await world.declareTopology(); // the operator restores the DLQ
      const [deadLetter] = await world.deadLetters(1);
      expect(deadLetter?.properties.messageId).toBe(messageId);
      await waitFor('readiness back', async () => (await probe(worker, '/ready')).status === 200);
      expect(await scrapedMetric(worker, METRIC.queueMissing, `queue="${world.deadLetterQueue}"`)).toBe(0);
      expect(await world.drainDeadLetters()).toHaveLength(0);
    });
  });

  describe('without permission to read the purchase queue', () => {
    it('reports the broker’s refusal on /ready, keeps retrying, and turns unhealthy after NOT_CONSUMING_UNHEALTHY_MS', async () => {
      const worker = await startTestWorker(
        world.settings({
          RABBITMQ_URL: urlOf(blindUser),
          RETRY_BASE_MS: 50,
          RETRY_MAX_MS: 200,
          NOT_CONSUMING_UNHEALTHY_MS: 1000,
        }),
      );
      try {
        const ready = await waitFor('the refusal on /ready', async () => {
          const answer = await probe(worker, '/ready');
          return answer.errors.rabbitmq?.reason?.includes('ACCESS_REFUSED') ? answer : undefined;
        });
        expect(ready.status).toBe(503);
        expect(ready.errors.rabbitmq?.reason).toContain(`access to queue '${world.queue}'`);
        expect((await probe(worker, '/health')).status).toBe(200);

        const unhealthy = await waitFor('/health to turn down', async () => {
          const answer = await probe(worker, '/health');
          return answer.status === 503 ? answer : undefined;
        });
        expect(unhealthy.errors.consumer?.reason).toContain('ACCESS_REFUSED');
      } finally {
        await worker.stop('test end');
      }
    });
  });

  describe('without permission to publish dead letters', () => {
    /** Runs `test` against a worker of the user without write permission, with these back-offs. */
    const withMutedWorker = async (
      backOff: { RETRY_BASE_MS: number; RETRY_MAX_MS: number },
      test: (worker: TestWorker) => Promise<void>,
    ) => {
      const worker = await world.startWorker({
        RABBITMQ_URL: urlOf(mutedUser),
        MAX_DELIVERIES: 1000,
        ...backOff,
      });
      try {
        await test(worker);
      } finally {
        await worker.stop('test end');
      }
    };

    it('stops naming a refusal on /ready once nothing has been refused for two of the longest back-offs', () =>
      withMutedWorker({ RETRY_BASE_MS: 50, RETRY_MAX_MS: 200 }, async (worker) => {
        await world.publishRaw(['not json'], { messageId: randomUUID() });
        await waitFor('the refusal on /ready', async () => (await probe(worker, '/ready')).status === 503);
        expect(await scrapedMetric(worker, METRIC.publishRefused)).toBe(1);
        // The queue's own delivery limit (10) dead-letters the message: nothing tries to publish any more.
        const [deadLetter] = await world.deadLetters(1);
        expect(deadLetter?.properties.headers?.['x-rejection-code']).toBeUndefined();
        await waitFor('readiness back', async () => (await probe(worker, '/ready')).status === 200);
        expect(await scrapedMetric(worker, METRIC.publishRefused)).toBe(0);
      }));

    it('keeps poison unacked while refused, and dead-letters it as soon as write is granted, on the same connection', () =>
      // Slow enough that the queue's own delivery limit (10) is not reached before write is granted.
      withMutedWorker({ RETRY_BASE_MS: 300, RETRY_MAX_MS: 600 }, async (worker) => {
        const messageId = randomUUID();
        await world.publishRaw(['not json'], { messageId });
        // Each refused publish closes the publisher channel (ACCESS_REFUSED on amq.default).
        await waitFor(
          'refused dead-letter publishes',
          async () => (await scrapedMetric(worker, METRIC.messages, 'outcome="retried"')) >= 2,
        );
        expect(await world.drainDeadLetters()).toHaveLength(0);
        expect(worker.worker.inFlight + (await world.queueDepth())).toBe(1);
        const ready = await probe(worker, '/ready');
        expect(ready.status).toBe(503);
        expect(ready.errors.rabbitmq?.reason).toContain('dead letters cannot be published');
        expect(ready.errors.rabbitmq?.reason).toContain('ACCESS_REFUSED');
        expect(await scrapedMetric(worker, METRIC.publishRefused)).toBe(1);

        await rabbitmqctl('set_permissions', '-p', vhost, mutedUser, '^$', '.*', '.*');
        // Well within the 10 s a publish waits for a channel: the worker opens a new one itself.
        const [deadLetter] = await world.deadLetters(1, 5000);
        expect(deadLetter?.properties.messageId).toBe(messageId);
        // Published by the worker, not dead-lettered by the queue at its delivery limit.
        expect(deadLetter?.properties.headers?.['x-rejection-code']).toBe('NOT_JSON');
        await waitFor('readiness back', async () => (await probe(worker, '/ready')).status === 200);
        expect(await scrapedMetric(worker, METRIC.publishRefused)).toBe(0);
      }));
  });

  describe('with the database holding a lock on orders', () => {
    let locker: pg.Client;

    beforeAll(async () => {
      locker = new pg.Client({ connectionString: world.db.url });
      await locker.connect();
    });
    afterAll(() => locker.end());

    const lockOrders = async () => {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
    };

    it('times the blocked INSERT out, acks nothing while locked, and stores every order once the lock goes', async () => {
      const worker = await world.startWorker({
        DB_STATEMENT_TIMEOUT_MS: 300,
        RETRY_BASE_MS: 50,
        RETRY_MAX_MS: 200,
      });
      const ordersBefore = await world.orders();
      await lockOrders();
      const saleId = randomUUID();
      await world.publish(Array.from({ length: 5 }, () => purchase({ saleId })));

      await waitFor(
        'statement timeouts',
        async () => (await scrapedMetric(worker, METRIC.dbWriteFailures, 'code="57014"')) >= 2,
      );
      expect(worker.worker.inFlight).toBe(5);
      expect(await world.drainDeadLetters()).toHaveLength(0);

      await locker.query('COMMIT');
      await waitFor('5 orders', async () => (await world.orders()) === ordersBefore + 5);
      await waitFor('nothing in flight', () => worker.worker.inFlight === 0);
      expect(await world.drainDeadLetters()).toHaveLength(0);
      await worker.stop('test end');
    });

    it('takes no more than PREFETCH messages while the writes hang', async () => {
      const saleId = randomUUID();
      const ordersBefore = await world.orders();
      await world.publish(Array.from({ length: 200 }, () => purchase({ saleId })));
      await lockOrders();
      const worker = await world.startWorker({ PREFETCH: 10, BATCH_SIZE: 5, MAX_BATCHES_IN_FLIGHT: 1 });
      await waitFor('a full prefetch window', () => worker.worker.inFlight === 10);
      await new Promise((resolve) => setTimeout(resolve, 300)); // what more could arrive, would by now
      expect(worker.worker.inFlight).toBe(10);
      expect(await scrapedMetric(worker, METRIC.inFlight)).toBe(10);
      expect(await world.queueDepth()).toBe(190);

      await locker.query('COMMIT');
      await waitFor('200 orders', async () => (await world.orders()) === ordersBefore + 200, {
        timeoutMs: 30_000,
      });
      await worker.stop('test end');
    });

    it('leaves exactly one consumer after pause and resume flipped many times', async () => {
      const worker = await world.startWorker();
      const flips: Promise<void>[] = [];
      for (let index = 0; index < 20; index++) {
        flips.push(worker.worker.pause('test'));
        worker.worker.resume('test');
      }
      await Promise.all(flips);
      await waitFor('consuming', () => worker.worker.state === 'consuming');
      // A quorum queue counts consumers through its log: a cancel shows a moment later.
      const channel = await world.openChannel();
      try {
        const consumers = async () => (await channel.checkQueue(world.queue)).consumerCount;
        await waitFor('one consumer', async () => (await consumers()) === 1, { timeoutMs: 5000 });
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(await consumers()).toBe(1);
      } finally {
        await channel.close();
      }
      const saleId = randomUUID();
      await world.publish([purchase({ saleId })]);
      await waitFor(
        'the order',
        async () => (await world.count('SELECT count(*) FROM orders WHERE sale_id = $1', [saleId])) === 1,
      );
      await worker.stop('test end');
    });
  });
});
