/**
 * Classifies a database failure at the boundary, by SQLSTATE, driver-adapter kind or Prisma code:
 * - `duplicate`: the UNIQUE constraint refused a row (P2002 / SQLSTATE 23505): a success, not an error.
 * - `transient`: the database is away or busy; the same statement can succeed later.
 * - `poison`: the database refuses this data and always will.
 * - `unknown`: anything else (a missing table, a refused permission); the whole batch backs off and is
 *   retried a bounded number of times, then left to the delivery limit.
 * Prisma 7 with a driver adapter reports raw-query failures as P2010 with the driver's error under
 * `meta.driverAdapterError.cause` ({ kind, originalCode }); `meta.target` is not relied on (it is missing or
 * names the index under driver adapters).
 */
export type DatabaseErrorClass = 'duplicate' | 'transient' | 'poison' | 'unknown';

const DUPLICATE = new Set(['P2002', '23505', 'UniqueConstraintViolation']);
const TRANSIENT = new Set([
  // Node socket errors
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  // driver-adapter kinds
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
  'TransactionWriteConflict',
  // Prisma connection and pool codes
  'P1001',
  'P1002',
  'P1008',
  'P1017',
  'P2024',
  'P2034',
  // SQLSTATEs outside the transient classes below: serialization failure, deadlock, lock not available
  '40001',
  '40P01',
  '55P03',
  // read-only transaction: a hot standby, or a primary demoted or not yet promoted behind the same address
  '25006',
  // the session was ended for idling in a transaction: the same statement succeeds on a new connection
  '25P03',
]);
const POISON = new Set([
  'LengthMismatch',
  'ValueOutOfRange',
  'InvalidInputValue',
  'NullConstraintViolation',
  'ForeignKeyConstraintViolation',
  'RestrictViolation',
  'P2000',
  'P2006',
  'P2007',
  'P2011',
  'P2012',
  'P2020',
  'P2023',
]);
// SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57 operator intervention (admin
// shutdown, cannot connect now), 58 system error are transient; 22 data exception and 23 integrity
// constraint violation (other than unique) are poison: the same row fails every time.
const TRANSIENT_SQLSTATE_CLASSES = new Set(['08', '53', '57', '58']);
const POISON_SQLSTATE_CLASSES = new Set(['22', '23']);
// Five characters, but not Prisma's own P1xxx–P6xxx codes (PostgreSQL's only P class is P0, PL/pgSQL).
const SQLSTATE = /^(?!P[1-9])[0-9A-Z]{5}$/;

// pg raises these without any code when a socket dies mid-query or the pool cannot hand out a client
// in time; they are matched only after every code above has been looked at.
const CODELESS_CONNECTION_LOSS = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection ended unexpectedly',
  // the client-side query_timeout: no answer in time (a half-open socket, a hung server)
  'Query read timeout',
];

interface ErrorLike {
  code?: unknown;
  kind?: unknown;
  originalCode?: unknown;
  message?: unknown;
  cause?: unknown;
  meta?: { driverAdapterError?: unknown };
}

/** Every code, kind and message found on the error, its causes and its driver-adapter error. */
function facts(error: unknown): { codes: string[]; messages: string[] } {
  const codes: string[] = [];
  const messages: string[] = [];
  const pending: unknown[] = [error];
  for (let visited = 0; pending.length > 0 && visited < 10; visited++) {
    const current = pending.shift();
    if (!current || typeof current !== 'object') continue;
    const fields = current as ErrorLike;
    for (const code of [fields.code, fields.kind, fields.originalCode]) {
      if (typeof code === 'string') codes.push(code);
    }
    if (typeof fields.message === 'string') messages.push(fields.message);
    pending.push(fields.cause, fields.meta?.driverAdapterError);
  }
  return { codes, messages };
}

export function classifyDatabaseError(error: unknown): DatabaseErrorClass {
  const { codes, messages } = facts(error);
  if (codes.some((code) => DUPLICATE.has(code))) return 'duplicate';
  if (
    codes.some(
      (code) =>
        TRANSIENT.has(code) || (SQLSTATE.test(code) && TRANSIENT_SQLSTATE_CLASSES.has(code.slice(0, 2))),
    )
  ) {
    return 'transient';
  }
  if (
    codes.some(
      (code) => POISON.has(code) || (SQLSTATE.test(code) && POISON_SQLSTATE_CLASSES.has(code.slice(0, 2))),
    )
  ) {
    return 'poison';
  }
  if (messages.some((message) => CODELESS_CONNECTION_LOSS.some((text) => message.includes(text)))) {
    return 'transient';
  }
  return 'unknown';
}

/**
 * The database's own words for the failure, on one line: the driver's message (`originalMessage`) when there
 * is one, rather than Prisma's multi-line "Invalid `prisma.$queryRaw()` invocation" text around it.
 */
export function databaseErrorMessage(error: unknown): string {
  const pending: unknown[] = [error];
  let fallback: string | undefined;
  for (let visited = 0; pending.length > 0 && visited < 10; visited++) {
    const current = pending.shift();
    if (!current || typeof current !== 'object') continue;
    const fields = current as ErrorLike & { originalMessage?: unknown };
    if (typeof fields.originalMessage === 'string') return fields.originalMessage;
    if (typeof fields.message === 'string') fallback ??= fields.message;
    pending.push(fields.meta?.driverAdapterError, fields.cause);
  }
  return (fallback ?? String(error)).replace(/\s+/g, ' ').trim();
}

/** The most specific code on the error (SQLSTATE when there is one), for logs and audit details. */
export function databaseErrorCode(error: unknown): string | undefined {
  const { codes } = facts(error);
  return codes.find((code) => SQLSTATE.test(code)) ?? codes[codes.length - 1];
}

/** The SQLSTATE of a database that answers but cannot take a write now (a hot standby, a read-only session). */
const READ_ONLY = '25006';
const SERVER_GONE: Record<string, string> = {
  '57P01': 'the database server is shutting down or ended the session (57P01)',
  '57P02': 'the database server crashed and is restarting (57P02)',
  '57P03': 'the database server is starting up or recovering and takes no connections yet (57P03)',
  '57P05': 'the database server ended the idle session (57P05)',
};
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** What a database failure says about the database, in an operator's words, for /ready and the logs. */
export function describeDatabaseFault(error: unknown): string {
  const { codes } = facts(error);
  const words = databaseErrorMessage(error);
  if (codes.includes(READ_ONLY)) {
    return `the database is read-only: a standby or a failover in progress (${words})`;
  }
  const gone = codes.find((code) => code in SERVER_GONE);
  if (gone) return SERVER_GONE[gone] as string;
  if (codes.some((code) => UNREACHABLE.has(code) || code === 'DatabaseNotReachable')) {
    return `the database is unreachable: ${words}`;
  }
  if (classifyDatabaseError(error) === 'transient') return `the database is away or overloaded: ${words}`;
  const code = databaseErrorCode(error);
  return code ? `${code}: ${words}` : words;
}
