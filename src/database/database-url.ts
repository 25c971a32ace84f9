import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { safeText } from '../common/safe-text.js';

/**
 * `DATABASE_URL` read once, at settings time, in Prisma's own form: the flash-sale API and the worker often
 * share one URL, so every parameter Prisma defines either means here what it means to Prisma or stops the
 * start naming the parameter and what to write instead; none is ignored. node-postgres never sees the URL
 * itself: given a `connectionString` it reads every query parameter as a client option of its own
 * (`options`, `application_name`, `statement_timeout`, `ssl`, `user`…, over the worker's explicit ones), so
 * the pool gets the explicit options parsed here and nothing else. The table is in README's settings.
 */
export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/flashsale';

/** A value the URL gives to one of the worker's settings, with the parameter that said so. */
export interface FromParameter<T> {
  value: T;
  /** How an error names it: `connection_limit=30`. */
  parameter: string;
}

/** What node-postgres connects with: where, who, TLS, startup options. */
export interface DatabaseClientOptions {
  host: string;
  port: number;
  user?: string;
  password?: string;
  database: string;
  ssl?: false | ConnectionOptions;
  /** Server options sent at start-up (`-c search_path=…`): PostgreSQL's own `options` parameter. */
  options?: string;
  enableChannelBinding?: boolean;
}

/** DATABASE_URL parsed: the connection, the schema, and what its parameters say of the worker's settings. */
export interface DatabaseUrl {
  client: DatabaseClientOptions;
  /** Schema of `orders`, `audit_logs` and the migration ledger (the connection's `search_path`); none: the server's default. */
  schema?: string;
  /** Prefix of the connections' `application_name` (`<prefix>:<WORKER_ID>`). */
  applicationName?: string;
  /** Longest life of a pooled connection, in seconds (`max_connection_lifetime`); none: no limit. */
  maxLifetimeSeconds?: number;
  /** Idle time after which a pooled connection is closed, in milliseconds; 0: never. */
  idleTimeoutMs?: number;
  poolSize?: FromParameter<number>;
  connectTimeoutMs?: FromParameter<number>;
  queryTimeoutMs?: FromParameter<number>;
  preparedStatements?: FromParameter<boolean>;
}

/** A DATABASE_URL the worker cannot honour; each problem names the parameter and what to use instead. */
export class DatabaseUrlError extends Error {
  override readonly name = 'DatabaseUrlError';
  constructor(readonly problems: string[]) {
    super(`DATABASE_URL cannot be used:\n  ${problems.join('\n  ')}`);
  }
}

// Parameters node-postgres (pg-connection-string) or libpq read that Prisma does not define: each would mean
// something to one reader and nothing to another, so the start is refused with what to write instead.
const REFUSED: Record<string, string> = {
  user: 'write the user before the @ of the URL',
  password: 'write the password after the user, before the @ of the URL',
  port: 'write the port after the host',
  database: 'write the database as the path of the URL',
  db: 'write the database as the path of the URL',
  dbname: 'write the database as the path of the URL',
  encoding: 'the worker always speaks UTF-8',
  client_encoding: 'the worker always speaks UTF-8',
  ssl: 'write sslmode=require, verify-ca or verify-full (Prisma does not read ssl)',
  uselibpqcompat: 'sslmode already has its libpq meaning here (see README)',
  sslnegotiation: 'not supported: the worker negotiates TLS the standard way',
  statement_timeout: 'set DB_STATEMENT_TIMEOUT_MS',
  idle_in_transaction_session_timeout: 'set DB_STATEMENT_TIMEOUT_MS',
  lock_timeout: 'not supported: a lock wait ends at DB_STATEMENT_TIMEOUT_MS',
  query_timeout: 'write socket_timeout (seconds) or set DB_QUERY_TIMEOUT_MS',
  connectionTimeoutMillis: 'write connect_timeout (seconds) or set DB_CONNECT_TIMEOUT_MS',
  keepalives: 'the worker always keeps connections alive with TCP keep-alive',
  keepalives_idle: 'the worker sends its first TCP keep-alive after 10 s',
  fallback_application_name: 'write application_name',
  target_session_attrs:
    'node-postgres connects to one host: point the URL at an address that leads to the primary (docs/deployment.md)',
  replication: 'the worker does not replicate',
  binary: 'not supported',
};

const SSL_PARAMETERS = [
  'sslmode',
  'sslaccept',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'sslidentity',
  'sslpassword',
];
const HONOURED = new Set([
  'schema',
  'connection_limit',
  'pool_timeout',
  'connect_timeout',
  'socket_timeout',
  'pgbouncer',
  'statement_cache_size',
  'host',
  'application_name',
  'options',
  'max_connection_lifetime',
  'max_idle_connection_lifetime',
  'channel_binding',
  ...SSL_PARAMETERS,
]);
// Parameters whose value may be a secret: never shown in a message.
const SECRET = new Set(['sslpassword', 'password', 'user']);
// PostgreSQL truncates longer names (NAMEDATALEN - 1): the schema created would not be the one written.
const MAX_IDENTIFIER_BYTES = 63;
const CONTROL = /\p{Cc}/u;

/** `name=value` as a message shows it: the value quoted, cut, without control characters; secrets hidden. */
export function shownParameter(name: string, value: string): string {
  const shownName = JSON.stringify(safeText(name, 64)).slice(1, -1);
  return SECRET.has(name)
    ? `${shownName} (value hidden)`
    : `${shownName}=${JSON.stringify(safeText(value, 100))}`;
}

/** A worker's connections' `application_name`: `<application_name or flashsale-worker>:<WORKER_ID>`, in 63 bytes. */
export function connectionName(databaseUrl: DatabaseUrl, workerId: string): string {
  let name = `${databaseUrl.applicationName ?? 'flashsale-worker'}:${workerId}`;
  while (Buffer.byteLength(name) > 63) name = [...name].slice(0, -1).join('');
  return name;
}

/** Parses `databaseUrl` or throws a DatabaseUrlError naming every parameter it cannot honour. */
export function parseDatabaseUrl(databaseUrl: string): DatabaseUrl {
  const problems: string[] = [];
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new DatabaseUrlError(['not a URL (one host: node-postgres connects to a single address)']);
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:')
    problems.push('must start with postgresql:// or postgres://');
  const parameters = queryParameters(url.search, problems);
  const part = (what: string, raw: string) => decoded(raw, what, problems);
  const database = part('the database (the path)', url.pathname.slice(1));
  if (!database) problems.push('names no database: write it as the path of the URL (…/flashsale)');
  const user = part('the user', url.username);
  const password = part('the password', url.password);
  const socketHost = parameters.get('host');
  if (socketHost !== undefined && !isAbsolute(socketHost))
    problems.push(`${shownParameter('host', socketHost)}: a socket directory must be an absolute path`);
  const client: DatabaseClientOptions = {
    host: socketHost ?? url.hostname.replace(/^\[(.+)\]$/, '$1'),
    port: url.port ? Number(url.port) : 5432,
    database,
  };
  if (user) client.user = user;
  if (password) client.password = password;

  for (const name of parameters.keys()) {
    if (HONOURED.has(name)) continue;
    const instead = REFUSED[name];
    const shownName = JSON.stringify(safeText(name, 64));
    problems.push(
      instead
        ? `${shownName}: not a Prisma parameter (node-postgres would read it): ${instead}`
        : `${shownName}: unknown parameter; README lists the ones the worker honours`,
    );
  }
  const result: DatabaseUrl = { client };
  const schema = parameters.get('schema');
  if (schema !== undefined && isIdentifier('schema', schema, problems)) result.schema = schema;
  readPoolParameters(parameters, result, problems);
  readStatementParameters(parameters, result, problems);
  const applicationName = parameters.get('application_name');
  if (applicationName !== undefined) {
    if (!applicationName || CONTROL.test(applicationName) || Buffer.byteLength(applicationName) > 40)
      problems.push(
        `${shownParameter('application_name', applicationName)}: 1 to 40 bytes without control characters (the worker appends :<WORKER_ID>)`,
      );
    else result.applicationName = applicationName;
  }
  const channelBinding = parameters.get('channel_binding');
  if (channelBinding === 'prefer') client.enableChannelBinding = true;
  else if (channelBinding === 'disable') client.enableChannelBinding = false;
  else if (channelBinding !== undefined)
    problems.push(
      `${shownParameter('channel_binding', channelBinding)}: prefer or disable (node-postgres cannot insist on channel binding)`,
    );
  const options = startupOptions(parameters.get('options'), result.schema, problems);
  if (options) client.options = options;
  const ssl = tlsOptions(parameters, problems);
  if (ssl !== undefined) client.ssl = ssl;
  if (problems.length) throw new DatabaseUrlError(problems);
  return result;
}

/** The query's parameters, each percent-decoded as strict UTF-8; one given twice is refused. */
function queryParameters(search: string, problems: string[]): Map<string, string> {
  const parameters = new Map<string, string>();
  for (const pair of search.slice(1).split('&')) {
    if (!pair) continue;
    const equals = pair.indexOf('=');
    const name = decoded(equals < 0 ? pair : pair.slice(0, equals), 'a parameter name', problems, true);
    const value = decoded(equals < 0 ? '' : pair.slice(equals + 1), `the value of ${name}`, problems, true);
    if (parameters.has(name))
      problems.push(`${JSON.stringify(safeText(name, 64))} is given twice: write it once`);
    parameters.set(name, value);
  }
  return parameters;
}

function decoded(raw: string, what: string, problems: string[], form = false): string {
  try {
    return decodeURIComponent(form ? raw.replaceAll('+', ' ') : raw);
  } catch {
    problems.push(`${what} is not percent-encoded UTF-8`);
    return '';
  }
}

/** Whether `value` can be a PostgreSQL name as written; adds the problem when not. */
function isIdentifier(name: string, value: string, problems: string[]): boolean {
  const bytes = Buffer.byteLength(value);
  if (bytes === 0 || bytes > MAX_IDENTIFIER_BYTES || CONTROL.test(value)) {
    problems.push(
      `${bytes > 100 ? `${name} (${bytes} bytes)` : shownParameter(name, value)}: a PostgreSQL name of 1 to ${MAX_IDENTIFIER_BYTES} bytes without control characters`,
    );
    return false;
  }
  return true;
}

/** A whole number of seconds within [min, max], or a problem naming the parameter. */
function seconds(
  parameters: Map<string, string>,
  name: string,
  min: number,
  max: number,
  problems: string[],
) {
  const value = parameters.get(name);
  if (value === undefined) return undefined;
  const number = /^\d{1,7}$/.test(value) ? Number(value) : NaN;
  if (number >= min && number <= max) return number;
  const zero = number === 0 ? ' (Prisma reads 0 as no limit; the worker never waits without one)' : '';
  problems.push(`${shownParameter(name, value)}: a whole number from ${min} to ${max}${zero}`);
  return undefined;
}

function readPoolParameters(parameters: Map<string, string>, result: DatabaseUrl, problems: string[]): void {
  const limit = seconds(parameters, 'connection_limit', 1, 100, problems);
  if (limit !== undefined) result.poolSize = { value: limit, parameter: `connection_limit=${limit}` };
  // node-postgres has one timeout for a new connection and for a free pooled one (DB_CONNECT_TIMEOUT_MS).
  const pool = seconds(parameters, 'pool_timeout', 1, 120, problems);
  const connect = seconds(parameters, 'connect_timeout', 1, 120, problems);
  if (pool !== undefined && connect !== undefined && pool !== connect)
    problems.push(
      `pool_timeout=${pool} and connect_timeout=${connect} differ: node-postgres has one timeout for both waits (DB_CONNECT_TIMEOUT_MS); write one of them`,
    );
  else if (pool !== undefined || connect !== undefined) {
    const parameter = pool !== undefined ? `pool_timeout=${pool}` : `connect_timeout=${connect}`;
    result.connectTimeoutMs = { value: (pool ?? connect ?? 0) * 1000, parameter };
  }
  const socket = seconds(parameters, 'socket_timeout', 1, 3600, problems);
  if (socket !== undefined)
    result.queryTimeoutMs = { value: socket * 1000, parameter: `socket_timeout=${socket}` };
  // 0, as in Prisma: no limit.
  const lifetime = seconds(parameters, 'max_connection_lifetime', 0, 86_400, problems);
  if (lifetime) result.maxLifetimeSeconds = lifetime;
  const idle = seconds(parameters, 'max_idle_connection_lifetime', 0, 86_400, problems);
  if (idle !== undefined) result.idleTimeoutMs = idle * 1000;
}

/** pgbouncer=true and statement_cache_size=0 both mean: no prepared statements. */
function readStatementParameters(
  parameters: Map<string, string>,
  result: DatabaseUrl,
  problems: string[],
): void {
  const pgbouncer = parameters.get('pgbouncer');
  if (pgbouncer !== undefined && pgbouncer !== 'true' && pgbouncer !== 'false')
    problems.push(`${shownParameter('pgbouncer', pgbouncer)}: true or false`);
  const cache = parameters.get('statement_cache_size');
  // The worker prepares three statements per connection: any cache of at least one keeps them prepared.
  if (cache !== undefined && !/^\d{1,9}$/.test(cache))
    problems.push(
      `${shownParameter('statement_cache_size', cache)}: a whole number (0: no prepared statements)`,
    );
  if (pgbouncer === 'true' && cache !== undefined && cache !== '0')
    problems.push(
      `pgbouncer=true and ${shownParameter('statement_cache_size', cache)} disagree: pgbouncer=true prepares nothing`,
    );
  else if (pgbouncer === 'true') result.preparedStatements = { value: false, parameter: 'pgbouncer=true' };
  else if (cache !== undefined && /^\d+$/.test(cache))
    result.preparedStatements = {
      value: Number(cache) > 0,
      parameter: `statement_cache_size=${Number(cache)}`,
    };
}

// Server settings the worker sets itself: set in `options`, they would be overridden without a word.
const SET_BY_WORKER: Record<string, string> = {
  search_path: 'write schema=',
  statement_timeout: 'set DB_STATEMENT_TIMEOUT_MS',
  idle_in_transaction_session_timeout: 'set DB_STATEMENT_TIMEOUT_MS',
  application_name: 'write application_name=',
};

/** PostgreSQL's `options`: the URL's own, then the schema as `search_path` (quoted, escaped as options are). */
function startupOptions(options: string | undefined, schema: string | undefined, problems: string[]) {
  if (options !== undefined) {
    if (CONTROL.test(options) || Buffer.byteLength(options) > 4096) {
      problems.push('options: at most 4096 bytes without control characters');
      return undefined;
    }
    for (const setting of optionSettings(options)) {
      const instead = SET_BY_WORKER[setting];
      if (instead) problems.push(`options sets ${setting}, which the worker sets itself: ${instead}`);
    }
  }
  const searchPath =
    schema === undefined ? undefined : `-c search_path=${escapeOption(quoteIdentifier(schema))}`;
  return [options?.trim(), searchPath].filter(Boolean).join(' ') || undefined;
}

/** The names of the settings an `options` string sets (`-c name=value`, `-cname=value`, `--name=value`). */
export function optionSettings(options: string): string[] {
  const args = splitOptions(options);
  const settings: string[] = [];
  args.forEach((arg, index) => {
    const assignment = arg === '-c' ? args[index + 1] : /^-c|^--/.test(arg) ? arg.slice(2) : undefined;
    if (assignment) settings.push((assignment.split('=')[0] ?? '').toLowerCase().replaceAll('-', '_'));
  });
  return settings;
}

/** Splits `options` as PostgreSQL does (pg_split_opts): at whitespace, a backslash escaping the next character. */
function splitOptions(options: string): string[] {
  const args: string[] = [];
  let current: string | undefined;
  for (let index = 0; index < options.length; index++) {
    const char = options[index] ?? '';
    if (/\s/.test(char)) {
      if (current !== undefined) args.push(current);
      current = undefined;
    } else if (char === '\\') current = (current ?? '') + (options[++index] ?? '');
    else current = (current ?? '') + char;
  }
  if (current !== undefined) args.push(current);
  return args;
}

/** A PostgreSQL identifier in double quotes, its quotes doubled. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A value escaped for PostgreSQL's `options` (backslash before whitespace and backslashes). */
function escapeOption(value: string): string {
  return value.replace(/[\s\\]/g, (char) => `\\${char}`);
}

/**
 * node-postgres' `ssl` for Prisma's sslmode and sslaccept, with libpq's meanings for verify-ca and
 * verify-full; undefined when the URL says nothing of TLS (node-postgres' default: no TLS unless PGSSLMODE).
 */
function tlsOptions(
  parameters: Map<string, string>,
  problems: string[],
): false | ConnectionOptions | undefined {
  const mode = parameters.get('sslmode');
  const given = SSL_PARAMETERS.filter((name) => name !== 'sslmode' && parameters.has(name));
  if (mode === undefined) {
    if (given.length)
      problems.push(`${given.join(', ')} without sslmode: write sslmode=require, verify-ca or verify-full`);
    return undefined;
  }
  if (mode === 'disable') {
    if (given.length) problems.push(`${given.join(', ')} with sslmode=disable: TLS is off, remove them`);
    return false;
  }
  if (mode === 'prefer') {
    problems.push(
      'sslmode=prefer: node-postgres cannot fall back to plaintext when the server offers no TLS; write sslmode=require (TLS) or sslmode=disable',
    );
    return undefined;
  }
  if (mode !== 'require' && mode !== 'verify-ca' && mode !== 'verify-full') {
    problems.push(`${shownParameter('sslmode', mode)}: disable, require, verify-ca or verify-full`);
    return undefined;
  }
  const ssl: ConnectionOptions = {};
  const file = (name: string) => certificateFile(name, parameters.get(name), problems);
  const ca = file('sslrootcert');
  if (ca) ssl.ca = ca;
  const accept = parameters.get('sslaccept');
  if (accept !== undefined && mode !== 'require')
    problems.push(`sslaccept with sslmode=${mode}: sslaccept applies to sslmode=require only`);
  else if (accept !== undefined && accept !== 'strict' && accept !== 'accept_invalid_certs')
    problems.push(`${shownParameter('sslaccept', accept)}: strict or accept_invalid_certs`);
  if (mode === 'verify-ca' && !ca)
    problems.push('sslmode=verify-ca needs sslrootcert=<CA file>: or write verify-full');
  if (accept === 'accept_invalid_certs' && ca)
    problems.push(
      'sslrootcert with sslaccept=accept_invalid_certs: the CA would never be checked; remove one',
    );
  // require: Prisma's default sslaccept (accept_invalid_certs) checks nothing; libpq's require with a root
  // certificate checks the chain (verify-ca); sslaccept=strict checks the chain and the host name.
  const checksChain = mode !== 'require' || accept === 'strict' || (accept === undefined && Boolean(ca));
  const checksHost = mode === 'verify-full' || accept === 'strict';
  ssl.rejectUnauthorized = checksChain;
  if (checksChain && !checksHost) ssl.checkServerIdentity = () => undefined;
  clientIdentity(parameters, ssl, file, problems);
  return ssl;
}

/** The client's certificate: sslcert + sslkey (PEM), or sslidentity (PKCS#12), each with sslpassword. */
function clientIdentity(
  parameters: Map<string, string>,
  ssl: ConnectionOptions,
  file: (name: string) => Buffer | undefined,
  problems: string[],
): void {
  const [cert, key, identity] = ['sslcert', 'sslkey', 'sslidentity'].map((name) => parameters.has(name));
  if (cert && !key)
    problems.push(
      'sslcert without sslkey: Prisma reads sslcert as the server CA, node-postgres as the client certificate; write sslrootcert=<CA file> for the CA, or sslcert with sslkey for a client certificate',
    );
  if (key && !cert) problems.push('sslkey without sslcert: write both for a client certificate');
  if (identity && (cert || key)) problems.push('sslidentity with sslcert/sslkey: write one client identity');
  if (parameters.has('sslpassword') && !key && !identity)
    problems.push('sslpassword without sslkey or sslidentity: it unlocks one of them');
  if (cert && key) {
    ssl.cert = file('sslcert');
    // Not enumerable, as node-postgres does with its own: an inspected or logged config does not show it.
    Object.defineProperty(ssl, 'key', { value: file('sslkey'), enumerable: false });
  }
  if (identity) ssl.pfx = file('sslidentity');
  const passphrase = parameters.get('sslpassword');
  if (passphrase !== undefined) ssl.passphrase = passphrase;
}

/** A certificate file's bytes; relative paths are refused (Prisma reads them from the schema's folder). */
function certificateFile(name: string, path: string | undefined, problems: string[]): Buffer | undefined {
  if (path === undefined) return undefined;
  if (!isAbsolute(path)) {
    problems.push(
      `${shownParameter(name, path)}: write an absolute path (Prisma reads a relative one from the schema's folder, node-postgres from the working directory)`,
    );
    return undefined;
  }
  try {
    return readFileSync(path);
  } catch (error) {
    problems.push(
      `${shownParameter(name, path)}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
    return undefined;
  }
}

/** The pool settings that a URL parameter can give too. */
export interface DatabaseSettings {
  DB_POOL_SIZE: number;
  DB_CONNECT_TIMEOUT_MS: number;
  DB_QUERY_TIMEOUT_MS: number;
  DB_PREPARED_STATEMENTS: boolean;
}

const FROM_PARAMETER = {
  DB_POOL_SIZE: 'poolSize',
  DB_CONNECT_TIMEOUT_MS: 'connectTimeoutMs',
  DB_QUERY_TIMEOUT_MS: 'queryTimeoutMs',
  DB_PREPARED_STATEMENTS: 'preparedStatements',
} as const;

/**
 * Each pool setting from its environment variable, else from the URL's parameter, else its default. A setting
 * and a parameter that disagree stop the start naming both: neither silently wins.
 */
export function reconcileDatabaseSettings(
  url: DatabaseUrl,
  explicit: Partial<DatabaseSettings>,
  defaults: DatabaseSettings,
): DatabaseSettings {
  const problems: string[] = [];
  const pick = <K extends keyof DatabaseSettings>(setting: K): DatabaseSettings[K] => {
    const fromUrl = url[FROM_PARAMETER[setting]] as FromParameter<DatabaseSettings[K]> | undefined;
    const set = explicit[setting];
    if (set !== undefined && fromUrl !== undefined && set !== fromUrl.value)
      problems.push(
        `${fromUrl.parameter} and ${setting}=${String(set)} disagree: remove one of them (both set the same thing)`,
      );
    return set ?? fromUrl?.value ?? defaults[setting];
  };
  const settings = {
    DB_POOL_SIZE: pick('DB_POOL_SIZE'),
    DB_CONNECT_TIMEOUT_MS: pick('DB_CONNECT_TIMEOUT_MS'),
    DB_QUERY_TIMEOUT_MS: pick('DB_QUERY_TIMEOUT_MS'),
    DB_PREPARED_STATEMENTS: pick('DB_PREPARED_STATEMENTS'),
  };
  if (problems.length) throw new DatabaseUrlError(problems);
  return settings;
}
