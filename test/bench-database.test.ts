import { describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { createDatabase } from '../scripts/bench/scenario.js';
import { TEST_POSTGRES_URL, uniqueName } from './support/harness.js';

describe("the bench's scenario database", () => {
  it('is created, migrated and dropped beside a DATABASE_URL whose database does not exist', async () => {
    const absent = new URL(TEST_POSTGRES_URL);
    absent.pathname = `/${uniqueName('fsw_absent')}`;
    const database = await createDatabase(absent.toString(), 'worker');
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const tables = await client
      .query<{ count: string }>("SELECT count(*) FROM pg_tables WHERE tablename IN ('orders', 'audit_logs')")
      .finally(() => client.end());
    expect(Number(tables.rows[0]?.count)).toBe(2);

    await database.drop();
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    const left = await admin
      .query('SELECT 1 FROM pg_database WHERE datname = $1', [new URL(database.url).pathname.slice(1)])
      .finally(() => admin.end());
    expect(left.rowCount).toBe(0);
  });
});
