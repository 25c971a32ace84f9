/**
 * `DATABASE_URL` read once, at settings time, in Prisma's own form: the flash-sale API and the worker often
 * share one URL, so every parameter Prisma defines either means here what it means to Prisma or stops the
 * start naming the parameter and what to write instead; none is ignored. node-postgres never sees the URL
 * itself: given a `connectionString` it reads every query parameter as a client option of its own
 * (`options`, `application_name`, `statement_timeout`, `ssl`, `user`…, over the worker's explicit ones), so
 * the pool gets the explicit options parsed here and nothing else. The table is in README's settings.
 */
import { isAbsolute } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { safeText } from '../common/safe-text.js';
import { SSL_PARAMETERS, tlsOptions } from './database-tls.js';
import { startupOptions } from './startup-options.js';
import { CONTROL, shownParameter } from './url-parameter.js';

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
// PostgreSQL truncates longer names (NAMEDATALEN - 1): the schema created would not be the one written.
const MAX_IDENTIFIER_BYTES = 63;

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
    throw new DatabaseUrlError([
      'not a URL with one host (node-postgres connects to a single address; for a Unix socket write localhost and host=<directory>)',
    ]);
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:')
    problems.push('must start with postgresql:// or postgres://');
  const parameters = queryParameters(url.search, problems);
  refuseUnknown(parameters, problems);
  const result: DatabaseUrl = { client: connectionTarget(url, parameters, problems) };
  const schema = parameters.get('schema');
  if (schema !== undefined && isIdentifier('schema', schema, problems)) result.schema = schema;
  readPoolParameters(parameters, result, problems);
  readStatementParameters(parameters, result, problems);
  readSessionParameters(parameters, result, problems);
  const options = startupOptions(parameters.get('options'), result.schema, problems);
  if (options) result.client.options = options;
  const ssl = tlsOptions(parameters, problems);
  if (ssl !== undefined) result.client.ssl = ssl;
  if (problems.length) throw new DatabaseUrlError(problems);
  return result;
}

/** Where and as whom to connect: host (or socket directory), port, database, user and password, decoded. */
function connectionTarget(
  url: URL,
  parameters: Map<string, string>,
  problems: string[],
): DatabaseClientOptions {
  const part = (what: string, raw: string) => decoded(raw, what, problems);
  const database = part('the database (the path)', url.pathname.slice(1));
  if (!database) problems.push('names no database: write it as the path of the URL (…/flashsale)');
  const socketHost = parameters.get('host');
  if (socketHost !== undefined && !isAbsolute(socketHost))
    problems.push(`${shownParameter('host', socketHost)}: a socket directory must be an absolute path`);
  const client: DatabaseClientOptions = {
    // A percent-encoded host (`%2Fvar%2Frun%2Fpostgresql`) is a socket directory to node-postgres too.
    host: socketHost ?? part('the host', url.hostname.replace(/^\[(.+)\]$/, '$1')),
    port: url.port ? Number(url.port) : 5432,
    database,
  };
  const user = part('the user', url.username);
  const password = part('the password', url.password);
  if (user) client.user = user;
  if (password) client.password = password;
  return client;
}

/** Every parameter neither honoured nor known is a problem, with what to write instead where there is one. */
function refuseUnknown(parameters: Map<string, string>, problems: string[]): void {
  for (const name of parameters.keys()) {
    if (HONOURED.has(name)) continue;
    const instead = REFUSED[name];
    const shownName = JSON.stringify(safeText(name, 64));
    problems.push(
      instead
        ? `${shownName}: not a Prisma parameter (node-postgres or libpq read it): ${instead}`
        : `${shownName}: unknown parameter; README lists the ones the worker honours`,
    );
  }
}

/** application_name and channel_binding: how the connections are named and authenticate. */
function readSessionParameters(
  parameters: Map<string, string>,
  result: DatabaseUrl,
  problems: string[],
): void {
  const applicationName = parameters.get('application_name');
  if (applicationName !== undefined) {
    if (!applicationName || CONTROL.test(applicationName) || Buffer.byteLength(applicationName) > 40)
      problems.push(
        `${shownParameter('application_name', applicationName)}: 1 to 40 bytes without control characters (the worker appends :<WORKER_ID>)`,
      );
    else result.applicationName = applicationName;
  }
  const channelBinding = parameters.get('channel_binding');
  if (channelBinding === 'prefer') result.client.enableChannelBinding = true;
  else if (channelBinding === 'disable') result.client.enableChannelBinding = false;
  else if (channelBinding !== undefined)
    problems.push(
      `${shownParameter('channel_binding', channelBinding)}: prefer or disable (node-postgres cannot insist on channel binding)`,
    );
}

/** The query's parameters, each percent-decoded as strict UTF-8; one given twice is refused. */
function queryParameters(search: string, problems: string[]): Map<string, string> {
  const parameters = new Map<string, string>();
  for (const pair of search.slice(1).split('&')) {
    if (!pair) continue;
    const equals = pair.indexOf('=');
    const name = decoded(equals < 0 ? pair : pair.slice(0, equals), 'a parameter name', problems, true);
    const value = decoded(
      equals < 0 ? '' : pair.slice(equals + 1),
      `the value of ${JSON.stringify(safeText(name, 64))}`,
      problems,
      true,
    );
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
