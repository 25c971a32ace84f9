import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { parseSettings } from '../src/config/settings.js';
import { PrismaService } from '../src/database/prisma.service.js';
import { PrivatePostgres } from './support/private-postgres.js';
import { handOver } from './support/private-server.js';

/**
 * sslmode, sslaccept and sslrootcert against a server with TLS on and a self-signed certificate issued to
 * another host name (`db.internal`), reached as 127.0.0.1: each mode checks exactly what it says.
 */
describe('TLS parameters of DATABASE_URL against a server with a self-signed certificate', () => {
  let server: PrivatePostgres;
  let certificate: string;

  beforeAll(async () => {
    server = await PrivatePostgres.start();
    certificate = join(server.directory, 'server.crt');
    const key = join(server.directory, 'server.key');
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=db.internal',
      '-addext',
      'subjectAltName=DNS:db.internal',
      '-keyout',
      key,
      '-out',
      certificate,
    ]);
    await handOver(server.directory, 'postgres');
    await chmod(key, 0o600);
    const admin = new pg.Client({ connectionString: server.url() });
    await admin.connect();
    try {
      await admin.query(`ALTER SYSTEM SET ssl_cert_file = '${certificate}'`);
      await admin.query(`ALTER SYSTEM SET ssl_key_file = '${key}'`);
      await admin.query('ALTER SYSTEM SET ssl = on');
      await admin.query('SELECT pg_reload_conf()');
    } finally {
      await admin.end();
    }
  }, 60_000);
  afterAll(() => server.destroy());

  /** Whether a worker's pool with `query` in its DATABASE_URL gets a TLS session, or the error that stopped it. */
  async function connectWith(query: string): Promise<boolean | string> {
    const prisma = new PrismaService(parseSettings({ DATABASE_URL: `${server.url()}?${query}` }));
    try {
      const [row] = await prisma.$queryRaw<{ ssl: boolean }[]>`
        SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`;
      return row?.ssl ?? false;
    } catch (error) {
      return (error as Error).message;
    } finally {
      await prisma.$disconnect();
    }
  }

  it('encrypts without checking the certificate with sslmode=require (Prisma: sslaccept=accept_invalid_certs)', async () => {
    expect(await connectWith('sslmode=require')).toBe(true);
  });

  it('speaks plaintext with sslmode=disable', async () => {
    expect(await connectWith('sslmode=disable')).toBe(false);
  });

  it('checks the chain but not the host name with verify-ca, or require with a root certificate', async () => {
    expect(await connectWith(`sslmode=verify-ca&sslrootcert=${certificate}`)).toBe(true);
    expect(await connectWith(`sslmode=require&sslrootcert=${certificate}`)).toBe(true);
  });

  it('refuses a certificate no trusted CA signed with verify-full', async () => {
    expect(await connectWith('sslmode=verify-full')).toMatch(/self-signed certificate/);
  });

  it('refuses a certificate for another host with verify-full or sslaccept=strict, even signed by the root', async () => {
    for (const query of [
      `sslmode=verify-full&sslrootcert=${certificate}`,
      `sslmode=require&sslaccept=strict&sslrootcert=${certificate}`,
    ]) {
      expect(await connectWith(query)).toMatch(/does not match certificate's altnames/);
    }
  });
});
