/** DATABASE_URL written for Prisma, against the real PostgreSQL: each parameter does what it says. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrismaPg } from '@prisma/adapter-pg';
import { execFile } from 'node:child_process';
import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { parseSettings } from '../src/config/settings.js';
import { PrismaService } from '../src/database/prisma.service.js';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { applyMigrations } from '../src/tools/migrate/migrate.js';
import { TEST_POSTGRES_URL, uniqueName, waitFor } from './support/harness.js';
import { WORKER_MAIN } from './support/worker-process.js';
import { purchase, TestWorld } from './support/test-worker.js';

const withQuery = (databaseUrl: string, query: string) => `${databaseUrl}?${query}`;

describe('a worker whose DATABASE_URL has ?schema=flashsale', () => {
  let world: TestWorld;
  let api: PrismaClient;
  const SALE = '5c9e2b1a-7d3f-4e8a-9b6c-1f2e3d4c5b6a';

  beforeAll(async () => {
    world = await TestWorld.create('db_url_schema');
    // The world's database already has the tables in public: the worker must leave them empty.
    expect(await applyMigrations(withQuery(world.db.url, 'schema=flashsale'))).toEqual([
      '20261122000000_init',
    ]);
    // The flash-sale API reads the same tables through Prisma's generated queries, schema-qualified.
    api = new PrismaClient({
      adapter: new PrismaPg({ connectionString: world.db.url }, { schema: 'flashsale' }),
    });
  });
  afterAll(async () => {
    await api.$disconnect();
    await world.close();
  });

  it('writes orders and audit rows into flashsale, where the API sees them, and none into public', async () => {
    await world.startWorker({ DATABASE_URL: withQuery(world.db.url, 'schema=flashsale') });
    await world.publish(Array.from({ length: 20 }, () => purchase({ saleId: SALE })));

    await waitFor('20 orders in flashsale.orders', async () => (await api.order.count()) === 20);
    await waitFor('20 audit rows in flashsale.audit_logs', async () => (await api.auditLog.count()) >= 20);
    expect(await world.count('SELECT count(*) FROM flashsale.orders WHERE sale_id = $1', [SALE])).toBe(20);
    expect(await world.count('SELECT count(*) FROM public.orders')).toBe(0);
    expect(await world.count('SELECT count(*) FROM public.audit_logs')).toBe(0);
  });
});

describe('a worker whose DATABASE_URL has connection_limit and application_name', () => {
  let world: TestWorld;

  beforeAll(async () => {
    world = await TestWorld.create('db_url_pool');
  });
  afterAll(() => world.close());

  it('opens connection_limit connections, named after application_name and the worker', async () => {
    const worker = await world.startWorker({
      DATABASE_URL: withQuery(world.db.url, 'connection_limit=7&application_name=flashsale-shared'),
    });
    const named = `flashsale-shared:${worker.settings.WORKER_ID}`;
    const backends = () =>
      world.count(
        'SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
        [named],
      );
    await waitFor('7 connections of the worker', async () => (await backends()) === 7);
    await world.publish(Array.from({ length: 500 }, () => purchase()));
    await waitFor('500 orders', async () => (await world.orders()) === 500);
    expect(await backends()).toBe(7);
  });
});

describe('sslmode against a server without TLS', () => {
  const database = withQuery(TEST_POSTGRES_URL, '');

  it('connects with sslmode=disable', async () => {
    const prisma = new PrismaService(parseSettings({ DATABASE_URL: `${database}sslmode=disable` }));
    try {
      await expect(prisma.ping()).resolves.toBeUndefined();
    } finally {
      await prisma.$disconnect();
    }
  });

  it('refuses to connect in plaintext with sslmode=require, saying why', async () => {
    const prisma = new PrismaService(parseSettings({ DATABASE_URL: `${database}sslmode=require` }));
    try {
      await expect(prisma.ping()).rejects.toThrow('The server does not support SSL connections');
    } finally {
      await prisma.$disconnect();
    }
  });

  it('stops the migrator the same way', async () => {
    await expect(applyMigrations(`${database}sslmode=require`)).rejects.toThrow(
      'The server does not support SSL connections',
    );
  });
});

describe('pool_timeout in seconds', () => {
  it('gives up waiting for a pooled connection after pool_timeout', async () => {
    const settings = parseSettings({
      DATABASE_URL: withQuery(TEST_POSTGRES_URL, 'connection_limit=1&pool_timeout=1'),
      WORKER_ID: uniqueName('url-pool-timeout'),
    });
    const prisma = new PrismaService(settings);
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    try {
      const holding = prisma.$queryRaw`SELECT pg_sleep(2)::text`.then(() => 'done');
      await waitFor('the sleep to hold the only connection', async () => {
        const active = await admin.query(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%pg_sleep%'",
          [`flashsale-worker:${settings.WORKER_ID}`],
        );
        return active.rowCount === 1;
      });
      const started = Date.now();
      await expect(prisma.ping()).rejects.toThrow('timeout exceeded when trying to connect');
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(Date.now() - started).toBeLessThan(1900);
      expect(await holding).toBe('done');
    } finally {
      await admin.end();
      await prisma.$disconnect();
    }
  });
});

/**
 * A TCP proxy in front of the test server that reads what the worker sends after its start-up message and
 * records the name of every statement it asks the server to prepare (Parse: `P`, length, name, query, …).
 */
async function startParseRecorder() {
  const upstream = new URL(TEST_POSTGRES_URL);
  const statementNames: string[] = [];
  const server: Server = createServer((client) => {
    const database = connect(Number(upstream.port || 5432), upstream.hostname);
    let pending = Buffer.alloc(0);
    let started = false;
    client.on('data', (chunk: Buffer) => {
      database.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const header = started ? 5 : 4;
        if (pending.length < header) return;
        const length = pending.readInt32BE(started ? 1 : 0) + (started ? 1 : 0);
        if (pending.length < length) return;
        if (started && pending[0] === 0x50) {
          const nameEnd = pending.indexOf(0, 5);
          statementNames.push(pending.subarray(5, nameEnd).toString('utf8'));
        }
        pending = pending.subarray(length);
        started = true;
      }
    });
    database.pipe(client);
    database.on('error', () => client.destroy());
    client.on('error', () => database.destroy());
    client.on('close', () => database.destroy());
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  return {
    statementNames,
    url: (databaseUrl: string) =>
      Object.assign(new URL(databaseUrl), {
        hostname: '127.0.0.1',
        port: String((server.address() as AddressInfo).port),
      }).toString(),
    close: () => new Promise((closed) => server.close(closed)),
  };
}

describe('a worker whose DATABASE_URL has pgbouncer=true', () => {
  let world: TestWorld;
  let recorder: Awaited<ReturnType<typeof startParseRecorder>>;

  beforeAll(async () => {
    world = await TestWorld.create('db_url_pgbouncer');
    recorder = await startParseRecorder();
  });
  afterAll(async () => {
    await world.close();
    await recorder.close();
  });

  it('prepares named statements without it (the recorder sees them)', async () => {
    const worker = await world.startWorker({ DATABASE_URL: recorder.url(world.db.url) });
    await world.publish(Array.from({ length: 10 }, () => purchase()));
    await waitFor('10 orders', async () => (await world.orders()) === 10);
    await worker.stop('next case');
    expect(recorder.statementNames.filter((name) => name.startsWith('fsw_')).length).toBeGreaterThan(0);
  });

  it('prepares no named statement with it, and still writes every order', async () => {
    recorder.statementNames.length = 0;
    await world.startWorker({ DATABASE_URL: withQuery(recorder.url(world.db.url), 'pgbouncer=true') });
    await world.publish(Array.from({ length: 10 }, () => purchase()));
    await waitFor('20 orders', async () => (await world.orders()) === 20);
    expect(recorder.statementNames.length).toBeGreaterThan(0);
    expect(recorder.statementNames.filter((name) => name !== '')).toEqual([]);
  });
});

describe('the built worker and migrator with a DATABASE_URL they cannot honour', () => {
  const MIGRATOR = resolve(import.meta.dirname, '../dist/src/tools/migrate/migrate.js');
  const BAD_URL =
    'postgresql://api:s3cretpw@127.0.0.1:1/shop?schema=flashsale&sslmode=prefer&connection_limit=30';
  const run = (script: string, env: NodeJS.ProcessEnv) =>
    promisify(execFile)(process.execPath, [script], {
      timeout: 10_000,
      env: { ...process.env, RABBITMQ_URL: 'amqp://127.0.0.1:1', ...env },
    }).then(
      ({ stderr }) => ({ code: 0, stderr }),
      (error: { code: number; stderr: string }) => error,
    );

  it('stops the worker at start-up (78), naming the parameter and the setting, never the password', async () => {
    const refused = await run(WORKER_MAIN, { DATABASE_URL: BAD_URL });
    expect(refused.code).toBe(78);
    expect(refused.stderr).toContain('DATABASE_URL (value hidden): sslmode=prefer');
    const conflicting = await run(WORKER_MAIN, {
      DATABASE_URL: BAD_URL.replace('&sslmode=prefer', ''),
      DB_POOL_SIZE: '4',
    });
    expect(conflicting.code).toBe(78);
    expect(conflicting.stderr).toContain('connection_limit=30 and DB_POOL_SIZE=4 disagree');
    expect(`${refused.stderr}${conflicting.stderr}`).not.toContain('s3cretpw');
  });

  it('stops the migrator before it connects, naming the parameter, never the password', async () => {
    const result = await run(MIGRATOR, { DATABASE_URL: BAD_URL });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('sslmode=prefer: node-postgres cannot fall back to plaintext');
    expect(result.stderr).not.toContain('s3cretpw');
  });
});
