import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { applyMigrations } from '../src/database/migrate.js';
import { TEST_POSTGRES_URL, uniqueName } from './support/harness.js';

describe('db:migrate', () => {
  const name = uniqueName('fsw_migrate');
  const url = Object.assign(new URL(TEST_POSTGRES_URL), { pathname: `/${name}` }).toString();
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });

  beforeAll(() => admin.connect());
  afterAll(async () => {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  });

  it('creates a missing database, applies every migration once and records it in the Prisma ledger', async () => {
    expect(await applyMigrations(url)).toEqual(['20261122000000_init']);
    expect(await applyMigrations(url)).toEqual([]);

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const ledger = await client.query(
        'SELECT migration_name, finished_at, applied_steps_count FROM "_prisma_migrations"',
      );
      expect(ledger.rows).toEqual([
        { migration_name: '20261122000000_init', finished_at: expect.any(Date), applied_steps_count: 1 },
      ]);
      const tables = await client.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
      );
      expect(tables.rows.map((row) => row.table_name)).toEqual([
        '_prisma_migrations',
        'audit_logs',
        'orders',
      ]);
    } finally {
      await client.end();
    }
  });

  it('applies each migration once when replicas migrate at the same time', async () => {
    const concurrentName = uniqueName('fsw_migrate_race');
    const concurrentUrl = Object.assign(new URL(TEST_POSTGRES_URL), {
      pathname: `/${concurrentName}`,
    }).toString();
    try {
      const results = await Promise.all([applyMigrations(concurrentUrl), applyMigrations(concurrentUrl)]);
      expect(results.flat()).toEqual(['20261122000000_init']);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS "${concurrentName}" WITH (FORCE)`);
    }
  });
});
