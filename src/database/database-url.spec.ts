import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidSettingsError, parseSettings } from '../config/settings.js';
import { connectionName, type DatabaseUrl, DatabaseUrlError, parseDatabaseUrl } from './database-url.js';
import { optionSettings } from './startup-options.js';

const BASE = 'postgresql://api:s3cretpw@db.internal:6543/s3test';
const url = (query: string) => parseDatabaseUrl(`${BASE}?${query}`);

/** The problems parseDatabaseUrl reports for `query`, or fails when it takes it. */
function problems(query: string): string[] {
  try {
    url(query);
  } catch (error) {
    expect(error).toBeInstanceOf(DatabaseUrlError);
    return (error as DatabaseUrlError).problems;
  }
  throw new Error(`took ?${query}`);
}

/** The message parseSettings throws for `env`; fails when it takes it. */
function settingsMessage(env: NodeJS.ProcessEnv): string {
  try {
    parseSettings(env);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidSettingsError);
    return (error as Error).message;
  }
  throw new Error('took the settings');
}

const certificates = mkdtempSync(join(tmpdir(), 'fsw-db-url-'));
const pem = (name: string) => {
  const path = join(certificates, name);
  writeFileSync(path, `-----BEGIN ${name}-----\n`);
  return path;
};
const CA = pem('ca.pem');
const CERT = pem('client.pem');
const KEY = pem('client.key');

describe('parseDatabaseUrl', () => {
  it('gives node-postgres the address, user, password and database, never the URL itself', () => {
    const { client } = parseDatabaseUrl('postgresql://u%40corp:p%2Fw%3A@[::1]:6543/my%20db');
    expect(client).toEqual({ host: '::1', port: 6543, user: 'u@corp', password: 'p/w:', database: 'my db' });
    expect(client.password).toBe('p/w:');
    expect(parseDatabaseUrl('postgres://h/d').client).toEqual({ host: 'h', port: 5432, database: 'd' });
  });

  it('refuses a URL without a database or with bytes that are not UTF-8', () => {
    expect(() => parseDatabaseUrl('postgresql://h:5432')).toThrow('names no database');
    expect(() => parseDatabaseUrl('postgresql://h/%ED%A0%80')).toThrow('not percent-encoded UTF-8');
    expect(() => parseDatabaseUrl('mysql://h/d')).toThrow('must start with postgresql://');
  });

  describe('schema', () => {
    it('is the connection search_path and the adapter schema', () => {
      const parsed = url('schema=flashsale');
      expect(parsed.schema).toBe('flashsale');
      expect(parsed.client.options).toBe('-c search_path="flashsale"');
    });

    it('quotes a name with quotes, spaces, backslashes and commas as one identifier', () => {
      const parsed = url(`schema=${encodeURIComponent('my "odd", sch\\ema é')}`);
      expect(parsed.schema).toBe('my "odd", sch\\ema é');
      expect(parsed.client.options).toBe('-c search_path="my\\ ""odd"",\\ sch\\\\ema\\ é"');
    });

    it.each([
      ['empty', ''],
      ['with NUL', 'a%00b'],
      ['with a line break', 'a%0Ab'],
      ['past 63 bytes', 'é'.repeat(32)],
      ['of a megabyte', 'x'.repeat(1024 * 1024)],
    ])('refuses a name %s', (_, name) => {
      const [problem] = problems(`schema=${name}`);
      expect(problem).toContain('a PostgreSQL name of 1 to 63 bytes');
      expect(problem?.length).toBeLessThan(300);
      expect(problem).not.toContain('\u0000');
    });

    it('is refused when given twice', () => {
      expect(problems('schema=a&schema=b')).toEqual(['"schema" is given twice: write it once']);
    });
  });

  it.each([
    ['connection_limit=30', { poolSize: { value: 30, parameter: 'connection_limit=30' } }],
    ['pool_timeout=20', { connectTimeoutMs: { value: 20_000, parameter: 'pool_timeout=20' } }],
    ['connect_timeout=7', { connectTimeoutMs: { value: 7000, parameter: 'connect_timeout=7' } }],
    ['pool_timeout=9&connect_timeout=9', { connectTimeoutMs: { value: 9000, parameter: 'pool_timeout=9' } }],
    ['socket_timeout=30', { queryTimeoutMs: { value: 30_000, parameter: 'socket_timeout=30' } }],
    ['pgbouncer=true', { preparedStatements: { value: false, parameter: 'pgbouncer=true' } }],
    ['pgbouncer=false', {}],
    ['statement_cache_size=0', { preparedStatements: { value: false, parameter: 'statement_cache_size=0' } }],
    [
      'statement_cache_size=100',
      { preparedStatements: { value: true, parameter: 'statement_cache_size=100' } },
    ],
    ['max_connection_lifetime=600', { maxLifetimeSeconds: 600 }],
    ['max_connection_lifetime=0', {}],
    ['max_idle_connection_lifetime=60', { idleTimeoutMs: 60_000 }],
    ['max_idle_connection_lifetime=0', { idleTimeoutMs: 0 }],
    ['application_name=flashsale-api', { applicationName: 'flashsale-api' }],
  ])('reads %s', (query, expected: Partial<DatabaseUrl>) => {
    const parsed = url(query);
    expect(parsed).toEqual({ client: parsed.client, ...expected });
  });

  it.each([
    ['connection_limit=0', 'connection_limit="0": a whole number from 1 to 100'],
    ['connection_limit=many', 'connection_limit="many": a whole number from 1 to 100'],
    ['connection_limit=1e3', 'connection_limit="1e3": a whole number'],
    ['pool_timeout=0', 'Prisma reads 0 as no limit; the worker never waits without one'],
    ['connect_timeout=0', 'connect_timeout="0": a whole number from 1 to 120'],
    ['socket_timeout=-1', 'socket_timeout="-1": a whole number from 1 to 3600'],
    [
      'pool_timeout=20&connect_timeout=5',
      'node-postgres has one timeout for both waits (DB_CONNECT_TIMEOUT_MS)',
    ],
    ['pgbouncer=yes', 'pgbouncer="yes": true or false'],
    ['pgbouncer=true&statement_cache_size=50', 'pgbouncer=true prepares nothing'],
    ['statement_cache_size=-1', 'statement_cache_size="-1": a whole number (0: no prepared statements)'],
    ['application_name=', 'application_name="": 1 to 40 bytes'],
    ['channel_binding=require', 'node-postgres cannot insist on channel binding'],
    ['host=relative/dir', 'a socket directory must be an absolute path'],
  ])('refuses %s', (query, expected) => {
    expect(problems(query).join('\n')).toContain(expected);
  });

  it('connects through a socket directory given as host, as Prisma does, or percent-encoded as the host', () => {
    expect(url('host=/var/run/postgresql').client.host).toBe('/var/run/postgresql');
    expect(parseDatabaseUrl('postgresql://%2Fvar%2Frun%2Fpostgresql/d').client.host).toBe(
      '/var/run/postgresql',
    );
  });

  it('refuses a URL without a host or with several, saying how to reach a socket', () => {
    expect(() => parseDatabaseUrl('postgresql://u@/db?host=/tmp')).toThrow(
      'write localhost and host=<directory>',
    );
    expect(() => parseDatabaseUrl('postgresql://h1:5432,h2:5432/db')).toThrow('not a URL with one host');
  });

  it('honours channel_binding prefer and disable', () => {
    expect(url('channel_binding=prefer').client.enableChannelBinding).toBe(true);
    expect(url('channel_binding=disable').client.enableChannelBinding).toBe(false);
  });

  describe('options', () => {
    it('passes the server options on, before the schema', () => {
      expect(url('options=-c%20synchronous_commit%3Dremote_apply&schema=s').client.options).toBe(
        '-c synchronous_commit=remote_apply -c search_path="s"',
      );
    });

    it.each([
      ['-c search_path=other', 'search_path', 'write schema='],
      ['-cstatement_timeout=1s', 'statement_timeout', 'set DB_STATEMENT_TIMEOUT_MS'],
      [
        '--idle-in-transaction-session-timeout=1',
        'idle_in_transaction_session_timeout',
        'set DB_STATEMENT_TIMEOUT_MS',
      ],
      ['-c  application_name=x', 'application_name', 'write application_name='],
    ])('refuses %s, a setting the worker sets itself', (options, setting, instead) => {
      expect(problems(`options=${encodeURIComponent(options)}`)).toEqual([
        `options sets ${setting}, which the worker sets itself: ${instead}`,
      ]);
    });

    it('reads setting names as PostgreSQL splits options, backslash escapes included', () => {
      expect(optionSettings('-c a=1 -cb=2\\ x --c-d=3 -c\\ e=4 plain')).toEqual(['a', 'b', 'c_d', ' e']);
    });

    it('refuses control characters', () => {
      expect(problems('options=-c%20a%3D1%00')).toEqual([
        'options: at most 4096 bytes without control characters',
      ]);
    });
  });

  describe('TLS', () => {
    it('says nothing of TLS when the URL does not (node-postgres default)', () => {
      expect(url('schema=s').client.ssl).toBeUndefined();
    });

    it('sslmode=disable turns TLS off', () => {
      expect(url('sslmode=disable').client.ssl).toBe(false);
    });

    it('sslmode=require encrypts without checking the certificate (Prisma default sslaccept, libpq require)', () => {
      expect(url('sslmode=require').client.ssl).toEqual({ rejectUnauthorized: false });
      expect(url('sslmode=require&sslaccept=accept_invalid_certs').client.ssl).toEqual({
        rejectUnauthorized: false,
      });
    });

    it('sslmode=require with sslaccept=strict checks the chain and the host name', () => {
      const ssl = url('sslmode=require&sslaccept=strict').client.ssl;
      expect(ssl).toEqual({ rejectUnauthorized: true });
    });

    it('sslmode=require with a root certificate checks the chain but not the host name (libpq verify-ca)', () => {
      const ssl = url(`sslmode=require&sslrootcert=${CA}`).client.ssl;
      expect(ssl).toMatchObject({ rejectUnauthorized: true, ca: Buffer.from('-----BEGIN ca.pem-----\n') });
      expect(ssl && ssl.checkServerIdentity?.('db.internal', {} as never)).toBeUndefined();
    });

    it('verify-ca needs a root certificate and skips the host name; verify-full checks both', () => {
      const verifyCa = url(`sslmode=verify-ca&sslrootcert=${CA}`).client.ssl;
      expect(verifyCa).toMatchObject({ rejectUnauthorized: true, checkServerIdentity: expect.any(Function) });
      expect(url('sslmode=verify-full').client.ssl).toEqual({ rejectUnauthorized: true });
      expect(url(`sslmode=verify-full&sslrootcert=${CA}`).client.ssl).toEqual({
        rejectUnauthorized: true,
        ca: expect.any(Buffer),
      });
      expect(problems('sslmode=verify-ca')).toEqual([
        'sslmode=verify-ca needs sslrootcert=<CA file>: or write verify-full',
      ]);
    });

    it('reads a client certificate and key (not enumerable), and a PKCS#12 identity with its password', () => {
      const pair = url(`sslmode=verify-full&sslcert=${CERT}&sslkey=${KEY}&sslpassword=k3ypw`).client.ssl;
      expect(pair).toMatchObject({ cert: expect.any(Buffer), key: expect.any(Buffer), passphrase: 'k3ypw' });
      expect(Object.keys(pair as object)).not.toContain('key');
      const identity = url(`sslmode=require&sslidentity=${CERT}&sslpassword=k3ypw`).client.ssl;
      expect(identity).toMatchObject({ pfx: expect.any(Buffer), passphrase: 'k3ypw' });
    });

    it.each([
      ['sslmode=prefer', 'node-postgres cannot fall back to plaintext'],
      ['sslmode=no-verify', 'sslmode="no-verify": disable, require, verify-ca or verify-full'],
      ['sslaccept=strict', 'sslaccept without sslmode'],
      [`sslrootcert=${CA}`, 'sslrootcert without sslmode'],
      [`sslmode=disable&sslrootcert=${CA}`, 'sslrootcert with sslmode=disable: TLS is off'],
      ['sslmode=verify-full&sslaccept=strict', 'sslaccept applies to sslmode=require only'],
      ['sslmode=require&sslaccept=lenient', 'sslaccept="lenient": strict or accept_invalid_certs'],
      [`sslmode=require&sslaccept=accept_invalid_certs&sslrootcert=${CA}`, 'the CA would never be checked'],
      [`sslmode=require&sslcert=${CERT}`, 'Prisma reads sslcert as the server CA'],
      [`sslmode=require&sslkey=${KEY}`, 'sslkey without sslcert'],
      [`sslmode=require&sslidentity=${CERT}&sslcert=${CERT}&sslkey=${KEY}`, 'write one client identity'],
      ['sslmode=require&sslpassword=x', 'sslpassword without sslkey or sslidentity'],
      ['sslmode=require&sslrootcert=certs/ca.pem', 'write an absolute path'],
      [
        'sslmode=require&sslrootcert=/nonexistent/ca.pem',
        'sslrootcert="/nonexistent/ca.pem": cannot be read (ENOENT)',
      ],
    ])('refuses %s', (query, expected) => {
      expect(problems(query).join('\n')).toContain(expected);
    });
  });

  it.each([
    ['statement_timeout=5', 'DB_STATEMENT_TIMEOUT_MS'],
    ['target_session_attrs=read-write', 'point the URL at an address that leads to the primary'],
    ['ssl=true', 'write sslmode=require'],
    ['port=5433', 'write the port after the host'],
    ['uselibpqcompat=true', 'sslmode already has its libpq meaning'],
  ])('refuses %s, which node-postgres would read and Prisma does not define', (query, instead) => {
    const [problem] = problems(query);
    expect(problem).toContain('not a Prisma parameter (node-postgres or libpq read it)');
    expect(problem).toContain(instead);
  });

  it('refuses an unknown parameter by name, never showing its value nor a password parameter', () => {
    const all = problems('typo_limit=3&password=hunter2&user=bob').join('\n');
    expect(all).toContain('"typo_limit": unknown parameter');
    expect(all).toContain('"password": not a Prisma parameter');
    expect(all).not.toMatch(/hunter2|bob/);
  });

  it('reports every problem at once', () => {
    expect(problems('connection_limit=0&sslmode=prefer&nope=1')).toHaveLength(3);
  });
});

describe('DATABASE_URL in the settings', () => {
  const PRISMA_URL = `${BASE}?connection_limit=30&pool_timeout=20&schema=flashsale`;

  it('takes the pool size, the timeout and the schema from Prisma parameters', () => {
    const settings = parseSettings({ DATABASE_URL: PRISMA_URL });
    expect(settings).toMatchObject({
      DB_POOL_SIZE: 30,
      DB_CONNECT_TIMEOUT_MS: 20_000,
      DB_PREPARED_STATEMENTS: true,
    });
    expect(settings.databaseUrl.schema).toBe('flashsale');
  });

  it('keeps the defaults when the URL says nothing', () => {
    expect(parseSettings({})).toMatchObject({
      DB_POOL_SIZE: 4,
      DB_CONNECT_TIMEOUT_MS: 5000,
      DB_QUERY_TIMEOUT_MS: 20_000,
      DB_PREPARED_STATEMENTS: true,
    });
  });

  it('takes a setting equal to its parameter, and refuses one that disagrees, naming both', () => {
    expect(parseSettings({ DATABASE_URL: PRISMA_URL, DB_POOL_SIZE: '30' }).DB_POOL_SIZE).toBe(30);
    const message = settingsMessage({
      DATABASE_URL: PRISMA_URL,
      DB_POOL_SIZE: '4',
      DB_CONNECT_TIMEOUT_MS: '5000',
    });
    expect(message).toContain('connection_limit=30 and DB_POOL_SIZE=4 disagree');
    expect(message).toContain('pool_timeout=20 and DB_CONNECT_TIMEOUT_MS=5000 disagree');
    expect(message).not.toContain('s3cretpw');
  });

  it('turns prepared statements off for pgbouncer=true, and refuses DB_PREPARED_STATEMENTS=true beside it', () => {
    const pooled = `${BASE}?pgbouncer=true`;
    expect(parseSettings({ DATABASE_URL: pooled }).DB_PREPARED_STATEMENTS).toBe(false);
    expect(
      parseSettings({ DATABASE_URL: pooled, DB_PREPARED_STATEMENTS: 'false' }).DB_PREPARED_STATEMENTS,
    ).toBe(false);
    expect(settingsMessage({ DATABASE_URL: pooled, DB_PREPARED_STATEMENTS: 'true' })).toContain(
      'pgbouncer=true and DB_PREPARED_STATEMENTS=true disagree',
    );
  });

  it('takes socket_timeout as DB_QUERY_TIMEOUT_MS, with the same rule', () => {
    expect(parseSettings({ DATABASE_URL: `${BASE}?socket_timeout=30` }).DB_QUERY_TIMEOUT_MS).toBe(30_000);
    expect(
      settingsMessage({ DATABASE_URL: `${BASE}?socket_timeout=30`, DB_QUERY_TIMEOUT_MS: '20000' }),
    ).toContain('socket_timeout=30 and DB_QUERY_TIMEOUT_MS=20000 disagree');
  });

  it('stops the start naming DATABASE_URL and the parameter, never the password', () => {
    const message = settingsMessage({ DATABASE_URL: `${BASE}?schema=a%00b&sslmode=prefer` });
    expect(message).toMatch(/DATABASE_URL \(value hidden\): schema="a\uFFFDb": a PostgreSQL name/);
    expect(message).toContain('DATABASE_URL (value hidden): sslmode=prefer');
    expect(message).not.toContain('s3cretpw');
    expect(message).not.toContain('\u0000');
  });
});

describe('connectionName', () => {
  it('names the connections after the URL application_name or flashsale-worker, cut to 63 bytes', () => {
    expect(connectionName(parseDatabaseUrl(BASE), 'w-1')).toBe('flashsale-worker:w-1');
    expect(connectionName(url('application_name=api'), 'w-1')).toBe('api:w-1');
    const long = connectionName(url('application_name=api'), 'é'.repeat(40));
    expect(Buffer.byteLength(long)).toBe(62);
    expect(long).toBe(`api:${'é'.repeat(29)}`);
  });
});
