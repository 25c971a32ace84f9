/** Whether an acked order would survive the loss of the primary, as the worker tells the operator. */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import pg from 'pg';
import { Registry } from 'prom-client';
import { parseSettings } from '../src/config/settings.js';
import { DurabilityMonitor } from '../src/database/durability.monitor.js';
import { PrismaService } from '../src/database/prisma.service.js';
import { METRIC } from '../src/observability/metric-names.js';
import { WorkerMetrics } from '../src/observability/worker-metrics.js';
import { uniqueName } from './support/harness.js';
import { scrapedMetric, TestWorld } from './support/test-worker.js';

describe('the durability of an acked order', () => {
  let world: TestWorld;
  const role = uniqueName('fsw_reader');

  beforeAll(async () => {
    world = await TestWorld.create('durability');
    await world.sql.query(`CREATE ROLE ${role} LOGIN`);
  });
  afterAll(async () => {
    await world.close();
    const admin = new pg.Client({ connectionString: new URL('/postgres', world.db.url).toString() });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.end();
  });

  it('says at start and on /metrics that a server with no synchronous standby can lose acked orders', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const worker = await world.startWorker();
      expect(await scrapedMetric(worker, METRIC.dbSynchronousStandbys)).toBe(0);
      expect(await scrapedMetric(worker, METRIC.dbSynchronousCommit, 'setting="on"')).toBe(1);
      expect(warn.mock.calls.map(([line]) => String(line))).toContainEqual(
        expect.stringMatching(
          /^acked orders survive the loss of the primary: no: no synchronous standby is configured/,
        ),
      );
    } finally {
      warn.mockRestore();
    }
  });

  it('shows -1 standbys where its role may not read pg_stat_replication', async () => {
    const url = new URL(world.db.url);
    url.username = role;
    const prisma = new PrismaService(parseSettings({ DATABASE_URL: url.toString(), LOG_LEVEL: 'fatal' }));
    const registry = new Registry();
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const monitor = new DurabilityMonitor(prisma, new WorkerMetrics(registry), 60_000);
      await monitor.check();
      const standbys = (await registry.getSingleMetric(METRIC.dbSynchronousStandbys)?.get())?.values[0]
        ?.value;
      expect(standbys).toBe(-1);
      // synchronous_standby_names is readable by every role, and empty here: that verdict stands.
      expect(warn.mock.calls.map(([line]) => String(line))).toContainEqual(
        expect.stringMatching(/: no: no synchronous standby is configured/),
      );
    } finally {
      warn.mockRestore();
      await prisma.$disconnect();
    }
  });
});
