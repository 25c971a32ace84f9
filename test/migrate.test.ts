import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AddressInfo, connect, createServer } from 'node:net';
import pg from 'pg';
import { applyMigrations, MigrationError } from '../src/tools/migrate/migrate.js';
import { TEST_POSTGRES_URL, uniqueName } from './support/harness.js';

/**
 * A stand-in for PgBouncer in front of the test server: it forwards connections, but, like a pooler that lists
 * only the application's databases, refuses any connection to `refused` with PgBouncer's own error. Records
 * the database each connection asked for. With `dropOptions`, it leaves out the start-up `options` (as a
 * PgBouncer with `options` in `ignore_startup_parameters` does).
 */
async function startPooler(refused: string, { dropOptions = false } = {}) {
  const upstream = new URL(TEST_POSTGRES_URL);
  const requested: string[] = [];
  const server = createServer((client) => {
    let startup = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      startup = Buffer.concat([startup, chunk]);
      if (startup.length < 4 || startup.length < startup.readInt32BE(0)) return;
      client.off('data', onData);
      // StartupMessage: length, protocol version, then NUL-terminated key/value pairs.
      const fields = startup.subarray(8, startup.readInt32BE(0)).toString('utf8').split('\0');
      const database = fields[fields.indexOf('database') + 1] ?? '';
      requested.push(database);
      if (database === refused) {
        const body = Buffer.from(`SFATAL\0C08P01\0Mno such database: ${database}\0\0`, 'utf8');
        const header = Buffer.alloc(5);
        header.write('E', 0);
        header.writeInt32BE(body.length + 4, 1);
        client.end(Buffer.concat([header, body]));
        return;
      }
      const server = connect(Number(upstream.port || 5432), upstream.hostname, () => {
        server.write(dropOptions ? withoutOptions(fields, startup) : startup);
        client.pipe(server).pipe(client);
      });
      server.on('error', () => client.destroy());
      client.on('error', () => server.destroy());
    };
    client.on('data', onData);
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as AddressInfo;
  return {
    requested,
    url: (database: string) =>
      Object.assign(new URL(TEST_POSTGRES_URL), {
        hostname: '127.0.0.1',
        port: String(port),
        pathname: `/${database}`,
      }).toString(),
    close: () => new Promise((closed) => server.close(closed)),
  };
}

/** The start-up message `startup` re-encoded without its `options` pair. */
function withoutOptions(fields: string[], startup: Buffer): Buffer {
  const pairs: string[] = [];
  for (let index = 0; index + 1 < fields.length; index += 2) {
    if (fields[index] && fields[index] !== 'options')
      pairs.push(fields[index] ?? '', fields[index + 1] ?? '');
  }
  const body = Buffer.from(`${pairs.join('\0')}\0\0`, 'utf8');
  const header = Buffer.alloc(8);
  header.writeInt32BE(body.length + 8, 0);
  startup.copy(header, 4, 4, 8);
  return Buffer.concat([header, body, startup.subarray(startup.readInt32BE(0))]);
}

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

describe('db:migrate behind a pooler that serves only the application database', () => {
  const name = uniqueName('fsw_migrate_pooled');
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  let pooler: Awaited<ReturnType<typeof startPooler>>;

  beforeAll(async () => {
    await admin.connect();
    pooler = await startPooler('postgres');
  });
  afterAll(async () => {
    await pooler.close();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  });

  it('migrates an existing database without connecting to the maintenance database', async () => {
    await admin.query(`CREATE DATABASE "${name}"`);
    expect(await applyMigrations(pooler.url(name))).toEqual(['20261122000000_init']);
    expect(await applyMigrations(pooler.url(name))).toEqual([]);
    expect(pooler.requested.length).toBeGreaterThan(0);
    expect(pooler.requested.filter((database) => database !== name)).toEqual([]);
  });

  it('says that a missing database cannot be created when the maintenance database is out of reach', async () => {
    const missing = uniqueName('fsw_migrate_missing');
    const failure = applyMigrations(pooler.url(missing));
    await expect(failure).rejects.toBeInstanceOf(MigrationError);
    await expect(failure).rejects.toThrow(`database "${missing}" does not exist and cannot be created`);
    const created = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [missing]);
    expect(created.rowCount).toBe(0);
  });
});

describe('db:migrate with ?schema= in DATABASE_URL', () => {
  const name = uniqueName('fsw_migrate_schema');
  const url = Object.assign(new URL(TEST_POSTGRES_URL), { pathname: `/${name}` }).toString();
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  const client = new pg.Client({ connectionString: url });
  const tablesIn = async (schema: string) =>
    (
      await client.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1',
        [schema],
      )
    ).rows.map((row) => row.table_name);

  beforeAll(async () => {
    await admin.connect();
    expect(await applyMigrations(`${url}?schema=flashsale`)).toEqual(['20261122000000_init']);
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  });

  it('creates the database and the schema, with the ledger and the tables in it, as prisma migrate deploy does', async () => {
    expect(await tablesIn('flashsale')).toEqual(['_prisma_migrations', 'audit_logs', 'orders']);
    expect(await tablesIn('public')).toEqual([]);
    expect(await applyMigrations(`${url}?schema=flashsale`)).toEqual([]);
  });

  it('keeps a ledger per schema: another schema of the same database gets its own tables', async () => {
    const odd = 'Odd "name", with\\ spaces';
    expect(await applyMigrations(`${url}?schema=${encodeURIComponent(odd)}`)).toEqual([
      '20261122000000_init',
    ]);
    expect(await tablesIn(odd)).toEqual(['_prisma_migrations', 'audit_logs', 'orders']);
    expect(await tablesIn('public')).toEqual([]);
  });

  it('refuses a parameter it cannot honour, naming it, before connecting', async () => {
    const failure = applyMigrations(`${url}?schema=flashsale&sslmode=prefer`);
    await expect(failure).rejects.toBeInstanceOf(MigrationError);
    await expect(failure).rejects.toThrow('sslmode=prefer: node-postgres cannot fall back to plaintext');
  });

  it('stops instead of migrating into public when a pooler drops the start-up options', async () => {
    const pooler = await startPooler('postgres', { dropOptions: true });
    try {
      await expect(applyMigrations(`${pooler.url(name)}?schema=elsewhere`)).rejects.toThrow(
        'does a pooler drop the start-up options?',
      );
      expect(await tablesIn('public')).toEqual([]);
    } finally {
      await pooler.close();
    }
  });
});
