import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
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
    await promisify(execFile)(
      'openssl',
      selfSigned('/CN=db.internal', key, certificate, '-addext', 'subjectAltName=DNS:db.internal'),
    );
    await issueClientCertificate(server.directory);
    await handOver(server.directory, 'postgres');
    await chmod(key, 0o600);
    // The client-certificate user must present a certificate of the CA; everyone else is trusted as before.
    const hba = join(server.dataDirectory, 'pg_hba.conf');
    await writeFile(hba, `hostssl all ${CERT_USER} 127.0.0.1/32 cert\n${await readFile(hba, 'utf8')}`);
    const admin = new pg.Client({ connectionString: server.url() });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE ${CERT_USER} LOGIN`);
      await admin.query(`ALTER SYSTEM SET ssl_cert_file = '${certificate}'`);
      await admin.query(`ALTER SYSTEM SET ssl_key_file = '${key}'`);
      await admin.query(`ALTER SYSTEM SET ssl_ca_file = '${join(server.directory, 'ca.crt')}'`);
      await admin.query('ALTER SYSTEM SET ssl = on');
      await admin.query('SELECT pg_reload_conf()');
    } finally {
      await admin.end();
    }
  }, 60_000);
  afterAll(() => server.destroy());

  /** Whether a worker's pool with `query` in its DATABASE_URL gets a TLS session, or the error that stopped it. */
  async function connectWith(query: string, user = 'postgres'): Promise<boolean | string> {
    const databaseUrl = Object.assign(new URL(server.url()), { username: user }).toString();
    const prisma = new PrismaService(parseSettings({ DATABASE_URL: `${databaseUrl}?${query}` }));
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

  describe('a client certificate', () => {
    const file = (name: string) => join(server.directory, name);

    it('is refused without one', async () => {
      expect(await connectWith('sslmode=require', CERT_USER)).toMatch(/requires a valid client certificate/);
    });

    it('is presented from sslcert and sslkey (PEM)', async () => {
      const query = `sslmode=require&sslcert=${file('client.crt')}&sslkey=${file('client.key')}`;
      expect(await connectWith(query, CERT_USER)).toBe(true);
    });

    it('is presented from an encrypted sslkey unlocked by sslpassword', async () => {
      const query = `sslmode=require&sslcert=${file('client.crt')}&sslkey=${file('client-encrypted.key')}&sslpassword=${KEY_PASSWORD}`;
      expect(await connectWith(query, CERT_USER)).toBe(true);
    });

    it('is presented from a PKCS#12 sslidentity unlocked by sslpassword', async () => {
      const query = `sslmode=require&sslidentity=${file('client.p12')}&sslpassword=${KEY_PASSWORD}`;
      expect(await connectWith(query, CERT_USER)).toBe(true);
    });
  });
});

const CERT_USER = 'flashsale_cert';
const KEY_PASSWORD = 'k3y-pw';

/** openssl's arguments for a self-signed certificate of `subject`, valid for a day, with its unencrypted key. */
function selfSigned(
  subject: string,
  keyFile: string,
  certificateFile: string,
  ...extensions: string[]
): string[] {
  return [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    subject,
    ...extensions,
    '-keyout',
    keyFile,
    '-out',
    certificateFile,
  ];
}

/** A CA in `directory`, and a client certificate it signed for CERT_USER: PEM, encrypted PEM key, PKCS#12. */
async function issueClientCertificate(directory: string): Promise<void> {
  const openssl = (...args: string[]) => promisify(execFile)('openssl', args, { cwd: directory });
  await openssl(...selfSigned('/CN=test CA', 'ca.key', 'ca.crt'));
  await openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    `/CN=${CERT_USER}`,
    '-keyout',
    'client.key',
    '-out',
    'client.csr',
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    'client.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-out',
    'client.crt',
  );
  await openssl(
    'pkey',
    '-in',
    'client.key',
    '-aes256',
    '-passout',
    `pass:${KEY_PASSWORD}`,
    '-out',
    'client-encrypted.key',
  );
  await openssl(
    'pkcs12',
    '-export',
    '-in',
    'client.crt',
    '-inkey',
    'client.key',
    '-passout',
    `pass:${KEY_PASSWORD}`,
    '-out',
    'client.p12',
  );
}
