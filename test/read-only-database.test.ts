import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { parseSettings } from '../src/config/settings.js';
import { OrderWriter } from '../src/database/order.writer.js';
import { PrismaService } from '../src/database/prisma.service.js';
import { METRIC } from '../src/observability/metric-names.js';
import type { RunningWorker } from '../src/worker.module.js';
import { waitFor } from './support/harness.js';
import { purchase, scrapedMetric, TestWorld } from './support/test-worker.js';

const READ_ONLY_REASON = /^the database is read-only: a standby or a failover in progress/;

interface Readiness {
  status: number;
  database: { status: string; reason?: string } | undefined;
}

async function readiness(worker: RunningWorker): Promise<Readiness> {
  const response = await fetch(`http://127.0.0.1:${worker.port}/ready`);
  const body = (await response.json()) as {
    info?: Record<string, Readiness['database']>;
    error?: Record<string, Readiness['database']>;
  };
  return { status: response.status, database: body.error?.database ?? body.info?.database };
}

/**
 * A database that answers but takes no write, as a hot standby behind the primary's address does after a
 * failover: every new session of the test database is read-only (`default_transaction_read_only`), and the
 * sessions open now are ended, as a failover ends them.
 */
describe('when the database behind the address is read-only (a standby, a failover in progress)', () => {
  let world: TestWorld;

  async function setReadOnly(readOnly: boolean): Promise<void> {
    await world.sql.query(
      `ALTER DATABASE "${world.db.name}" SET default_transaction_read_only = ${readOnly ? 'on' : 'off'}`,
    );
    if (readOnly) {
      await world.sql.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND application_name LIKE 'flashsale-worker:%'`,
        [world.db.name],
      );
    }
  }

  beforeAll(async () => {
    world = await TestWorld.create('readonly');
  });
  afterAll(async () => {
    await setReadOnly(false);
    await world.close();
  });

  it('answers 503 on /ready within seconds, in words, though no purchase is in flight', async () => {
    const worker = await world.startWorker();
    expect((await readiness(worker)).status).toBe(200);

    await setReadOnly(true);
    const unready = await waitFor(
      '/ready to say the database is read-only',
      async () => {
        const ready = await readiness(worker);
        return ready.status === 503 && READ_ONLY_REASON.test(ready.database?.reason ?? '')
          ? ready
          : undefined;
      },
      { timeoutMs: 5000, intervalMs: 100 },
    );
    expect(unready.database?.status).toBe('down');

    await setReadOnly(false);
    await waitFor('/ready to answer 200 again', async () => (await readiness(worker)).status === 200, {
      timeoutMs: 5000,
    });
    await worker.stop('test end');
  });

  it('pauses consuming, hands nothing back and spends no delivery, then stores every purchase once', async () => {
    // Settings an operator may pick for a sale: few attempts, few deliveries, short back-offs.
    const worker = await world.startWorker({
      RETRY_BASE_MS: 20,
      RETRY_MAX_MS: 200,
      RETRY_MAX_ATTEMPTS: 1,
      MAX_DELIVERIES: 2,
      AUDIT_FLUSH_INTERVAL_MS: 100,
    });
    await setReadOnly(true);
    const saleId = randomUUID();
    const purchases = Array.from({ length: 300 }, () => purchase({ saleId }));
    await world.publish(purchases);

    await waitFor('the circuit open and the consumer paused', async () => {
      const open = await scrapedMetric(worker, METRIC.circuitOpen);
      const paused = await scrapedMetric(worker, METRIC.consumerPaused);
      return open === 1 && paused === 1;
    });
    const unready = await readiness(worker);
    expect(unready.status).toBe(503);
    expect(unready.database?.reason).toMatch(READ_ONLY_REASON);
    expect(unready.database?.reason).toMatch(/consuming paused, database circuit open for \d+ s$/);

    // Read-only for many times MAX_DELIVERIES × RETRY_MAX_MS: nothing may be handed back or dead-lettered.
    const failuresWhenOpen = await scrapedMetric(worker, METRIC.dbWriteFailures, 'code="25006"');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(await scrapedMetric(worker, METRIC.messages, 'outcome="retried"')).toBe(0);
    expect(await scrapedMetric(worker, METRIC.messages, 'outcome="rejected"')).toBe(0);
    expect(await world.drainDeadLetters()).toHaveLength(0);
    // Batches wait for the circuit instead of being bisected: no INSERT per purchase.
    const failuresSince =
      (await scrapedMetric(worker, METRIC.dbWriteFailures, 'code="25006"')) - failuresWhenOpen;
    expect(failuresSince).toBeLessThanOrEqual(3);

    await setReadOnly(false);
    await waitFor('every purchase stored', async () => (await world.orders()) === 300, { timeoutMs: 20_000 });
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
    await waitFor('/ready to answer 200 again', async () => (await readiness(worker)).status === 200);
    await waitFor(
      'an audit row per order',
      async () =>
        (await world.count(
          "SELECT count(*) FROM audit_logs WHERE event = 'ORDER_CONFIRMED' AND sale_id = $1",
          [saleId],
        )) === 300,
    );
    expect(await world.count('SELECT count(DISTINCT user_id) FROM orders WHERE sale_id = $1', [saleId])).toBe(
      300,
    );
    expect(await world.drainDeadLetters()).toHaveLength(0);
    await worker.stop('test end');
  });

  it('destroys the connection that said it is read-only instead of returning it to the pool', async () => {
    const settings = parseSettings({ DATABASE_URL: world.db.url, DB_POOL_SIZE: '1', LOG_LEVEL: 'fatal' });
    const prisma = new PrismaService(settings);
    try {
      await setReadOnly(true);
      const backend = async () =>
        (await prisma.$queryRawUnsafe<{ pid: number }[]>('SELECT pg_backend_pid() AS pid'))[0]?.pid;
      const readOnlyBackend = await backend();
      await expect(new OrderWriter(prisma).checkWritable()).rejects.toMatchObject({
        message: expect.stringContaining('read-only transaction'),
      });
      const next = await backend();
      expect(next).toBeDefined();
      expect(next).not.toBe(readOnlyBackend);
    } finally {
      await setReadOnly(false);
      await prisma.$disconnect();
    }
  });
});
