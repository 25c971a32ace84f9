import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { METRIC } from '../src/observability/metric-names.js';
import { waitFor } from './support/harness.js';
import { purchase, scrapedMetric, TestWorld } from './support/test-worker.js';

const run = promisify(execFile);

/** Closes this worker's broker connection from the broker side, as a broker restart or a network cut does. */
async function closeBrokerConnection(workerId: string): Promise<void> {
  const { stdout } = await run('rabbitmqctl', ['list_connections', '-q', 'pid', 'client_properties']);
  // The whole name: worker vm-1704 must not match the connection of another run's worker vm-17049.
  const named = new RegExp(`flashsale-worker ${workerId.replace(/[^\w]/g, '\\$&')}(?![\\w-])`);
  const line = stdout.split('\n').find((row) => named.test(row));
  if (!line) throw new Error(`no broker connection named for ${workerId}`);
  await run('rabbitmqctl', ['close_connection', line.split('\t')[0] as string, 'test: connection cut']);
}

describe('when things fail', () => {
  let world: TestWorld;

  beforeEach(async () => {
    world = await TestWorld.create('failures');
  });
  afterEach(() => world.close());

  /**
   * Starts a worker with `settings`, then publishes `count` purchases whose every insert fails with an error
   * that is neither transient nor the data's fault (42P01).
   */
  async function startWorkerWithOrdersTableAway(settings: Record<string, number>, count: number) {
    const worker = await world.startWorker(settings);
    await world.sql.query('ALTER TABLE orders RENAME TO orders_away');
    const saleId = randomUUID();
    await world.publish(Array.from({ length: count }, () => purchase({ saleId })));
    return worker;
  }

  it('never acks a purchase whose insert failed: it is redelivered and stored once the database accepts it', async () => {
    const requeueOften = { RETRY_BASE_MS: 20, RETRY_MAX_MS: 100, RETRY_MAX_ATTEMPTS: 2, MAX_DELIVERIES: 50 };
    const worker = await startWorkerWithOrdersTableAway(requeueOften, 10);

    // Each message fails, is handed back to the broker after its back-off, and comes again.
    const retried = () => scrapedMetric(worker, METRIC.messages, 'outcome="retried"');
    await waitFor('messages requeued at least twice each', async () => (await retried()) >= 20, {
      timeoutMs: 10_000,
    });
    expect(await world.count('SELECT count(*) FROM orders_away')).toBe(0);
    await world.sql.query('ALTER TABLE orders_away RENAME TO orders');

    await waitFor('10 orders', async () => (await world.orders()) === 10, { timeoutMs: 20_000 });
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
    expect(await world.drainDeadLetters()).toHaveLength(0);
    expect(await world.count('SELECT count(DISTINCT user_id) FROM orders')).toBe(10);
  });

  it("consumes the flash-sale API's classic purchase_queue as it was declared and dead-letters to its DLQ", async () => {
    const queue = world.queue.replace('.', '_') + '_queue';
    const deadLetterQueue = world.queue.replace('.', '_') + '_dlq';
    const channel = await world.openChannel();
    await channel.assertQueue(deadLetterQueue, { durable: true });
    await channel.assertQueue(queue, {
      durable: true,
      arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': deadLetterQueue },
    });
    try {
      await world.startWorker({
        PURCHASE_QUEUE: queue,
        DEAD_LETTER_QUEUE: deadLetterQueue,
        QUEUE_TYPE: 'classic',
      });
      const valid = purchase({ saleId: randomUUID() });
      channel.sendToQueue(queue, Buffer.from(JSON.stringify(valid)), {
        persistent: true,
        contentType: 'application/json',
        headers: { 'x-retry-count': 1 },
      });
      channel.sendToQueue(queue, Buffer.from('not json'), {
        persistent: true,
        contentType: 'application/json',
      });

      await waitFor('the order', async () => (await world.orders()) === 1);
      const deadLetter = await waitFor('the poison in the API DLQ', () =>
        channel.get(deadLetterQueue, { noAck: true }),
      );
      expect(deadLetter.content.toString('utf8')).toBe('not json');
      expect(deadLetter.properties.headers?.['x-rejection-reason']).toContain('not JSON');
      expect((await channel.checkQueue(queue)).messageCount).toBe(0);
    } finally {
      await channel.deleteQueue(queue);
      await channel.deleteQueue(deadLetterQueue);
      await channel.close();
    }
  });

  it('uses an existing queue whose arguments differ from its own instead of dying on PRECONDITION_FAILED', async () => {
    const channel = await world.openChannel();
    await channel.assertQueue(world.queue, { durable: true }); // classic, no dead-lettering
    await channel.close();
    await world.startWorker(); // configured for quorum
    await world.publish([purchase({ saleId: randomUUID() })]);
    await waitFor('the order', async () => (await world.orders()) === 1);
  });

  it('consumes again after the broker cancels its consumer (queue deleted)', async () => {
    const worker = await world.startWorker({ RETRY_MAX_MS: 500 });
    const channel = await world.openChannel();
    await channel.deleteQueue(world.queue);
    await channel.close();
    await waitFor('the worker to notice the cancel', () => worker.worker.state !== 'consuming');
    await waitFor('the worker to consume again', () => worker.worker.state === 'consuming', {
      timeoutMs: 10_000,
    });

    await world.publish([purchase({ saleId: randomUUID() })]);
    await waitFor('the order', async () => (await world.orders()) === 1);
  });

  it('survives a broker connection cut mid-stream: every purchase stored once, nothing acked on the dead channel', async () => {
    const worker = await world.startWorker({ BATCH_SIZE: 20, PREFETCH: 50 });
    const saleId = randomUUID();
    const bodies = Array.from({ length: 600 }, () => purchase({ saleId }));
    await world.publish(bodies.slice(0, 300));
    await waitFor('some orders', async () => (await world.orders()) > 0);
    await closeBrokerConnection(worker.settings.WORKER_ID);
    await world.publish(bodies.slice(300));

    await waitFor('600 orders', async () => (await world.orders()) === 600, { timeoutMs: 30_000 });
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0, {
      timeoutMs: 15_000,
    });
    expect(worker.worker.state).toBe('consuming');
    expect(await world.drainDeadLetters()).toHaveLength(0);
  });

  it('at shutdown, ends the waits of purchases retrying at once: exits 0 in time, acks nothing, the purchases come back', async () => {
    // Retrying in the worker far past the deadline: the 25 messages are still held when SIGTERM comes.
    const retryPastDeadline = {
      RETRY_BASE_MS: 50,
      RETRY_MAX_MS: 200,
      RETRY_MAX_ATTEMPTS: 1000,
      SHUTDOWN_DEADLINE_MS: 5000,
    };
    const worker = await startWorkerWithOrdersTableAway(retryPastDeadline, 25);
    await waitFor('25 messages held', () => worker.worker.inFlight === 25);

    const stoppedAt = Date.now();
    expect(await worker.stop('SIGTERM')).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(retryPastDeadline.SHUTDOWN_DEADLINE_MS);
    await waitFor('25 messages back in the queue', async () => (await world.queueDepth()) === 25);

    await world.sql.query('ALTER TABLE orders_away RENAME TO orders');
    await world.startWorker();
    await waitFor('25 orders', async () => (await world.orders()) === 25);
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
  });

  it('past its shutdown deadline exits non-zero having acked nothing uncommitted; the purchases come back', async () => {
    // An INSERT blocked on a lock is work still running, not a wait: the drain waits for it until the deadline
    // (the statement timeout, above the deadline, ends it afterwards).
    const locker = new pg.Client({ connectionString: world.db.url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
      const worker = await world.startWorker({ DB_STATEMENT_TIMEOUT_MS: 3000, SHUTDOWN_DEADLINE_MS: 800 });
      await world.publish(Array.from({ length: 25 }, () => purchase({ saleId: randomUUID() })));
      await waitFor('25 messages held', () => worker.worker.inFlight === 25);

      expect(await worker.stop('SIGTERM')).toBe(1);
      await waitFor('25 messages back in the queue', async () => (await world.queueDepth()) === 25);
      await locker.query('COMMIT');
    } finally {
      await locker.end();
    }
    await world.startWorker();
    await waitFor('25 orders', async () => (await world.orders()) === 25);
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
  });
});
