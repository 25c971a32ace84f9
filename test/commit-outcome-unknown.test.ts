import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { METRIC } from '../src/observability/metric-names.js';
import { waitFor } from './support/harness.js';
import { FaultProxy } from './support/fault-proxy.js';
import { purchase, scrapedMetric, TestWorld } from './support/test-worker.js';

const PURCHASES = 20;

/**
 * A commit whose answer never reaches the worker (the connection dies, a failover cuts it) has an unknown
 * outcome: the order may exist. The worker must not ack it then, nor dead-letter it; its retry finds the
 * order and acks the message as a duplicate.
 */
describe('when the answer to a commit is lost', () => {
  let world: TestWorld;
  let proxy: FaultProxy;

  beforeAll(async () => {
    world = await TestWorld.create('lostcommit');
    // Each order INSERT takes a while before it commits, long enough to cut its answer off in the middle.
    await world.sql.query(`
      CREATE TABLE commit_delay (seconds float8 NOT NULL);
      INSERT INTO commit_delay VALUES (0);
      CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep((SELECT seconds FROM commit_delay)); RETURN NULL; END $$;
      CREATE TRIGGER slow_commit AFTER INSERT ON orders FOR EACH STATEMENT EXECUTE FUNCTION slow_commit();`);
    const server = new URL(world.db.url);
    proxy = await FaultProxy.start(server.hostname, Number(server.port || 5432));
  });
  afterAll(async () => {
    await world.close();
    await proxy.close();
  });

  it('never acks or dead-letters it, and its retry acks it as the duplicate of the committed order', async () => {
    const throughProxy = new URL(world.db.url);
    throughProxy.host = proxy.address;
    const worker = await world.startWorker({
      DATABASE_URL: throughProxy.toString(),
      // One batch, one INSERT: the whole sale is written by the statement whose answer is cut off.
      BATCH_SIZE: PURCHASES,
      BATCH_WAIT_MS: 2000,
      DB_STATEMENT_TIMEOUT_MS: 5000,
      DB_QUERY_TIMEOUT_MS: 6000,
      DB_CONNECT_TIMEOUT_MS: 1000,
      RETRY_BASE_MS: 50,
      RETRY_MAX_MS: 500,
      RETRY_MAX_ATTEMPTS: 1,
      MAX_DELIVERIES: 2,
    });
    await world.sql.query('UPDATE commit_delay SET seconds = 1.5');
    const saleId = randomUUID();
    await world.publish(Array.from({ length: PURCHASES }, () => purchase({ saleId })));

    // The INSERT reached the server (the worker's, not this query, whose text holds the same words): cut every
    // byte off, both ways, before it commits and answers.
    await waitFor(
      'the order INSERT running on the server',
      async () =>
        (await world.count(
          `SELECT count(*) FROM pg_stat_activity
           WHERE datname = $1 AND state = 'active' AND query LIKE '%INSERT INTO orders%'
             AND application_name LIKE 'flashsale-worker:%' AND pid <> pg_backend_pid()`,
          [world.db.name],
        )) > 0,
      { intervalMs: 20 },
    );
    proxy.blackhole();
    await waitFor('the orders committed on the server', async () => (await world.orders()) === PURCHASES, {
      timeoutMs: 5000,
    });
    await world.sql.query('UPDATE commit_delay SET seconds = 0');

    // Committed, but the worker cannot know: nothing acked, nothing handed back or dead-lettered.
    const counted = async (outcome: string) => scrapedMetric(worker, METRIC.messages, `outcome="${outcome}"`);
    await waitFor(
      'the INSERT to time out on the client',
      async () => {
        return (await scrapedMetric(worker, METRIC.dbWriteFailures)) > 0;
      },
      { timeoutMs: 10_000 },
    );
    for (const outcome of ['confirmed', 'duplicate', 'retried', 'rejected']) {
      expect({ outcome, count: await counted(outcome) }).toEqual({ outcome, count: 0 });
    }
    expect(await scrapedMetric(worker, METRIC.inFlight)).toBe(PURCHASES);

    proxy.heal();
    await waitFor('every message acked', async () => (await counted('duplicate')) === PURCHASES, {
      timeoutMs: 20_000,
    });
    expect(await counted('confirmed')).toBe(0);
    expect(await counted('retried')).toBe(0);
    expect(await world.orders()).toBe(PURCHASES);
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
    expect(await world.drainDeadLetters()).toHaveLength(0);
  });
});
