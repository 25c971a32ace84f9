import { describe, expect, it } from '@jest/globals';
import {
  classifyDatabaseError,
  databaseErrorCode,
  databaseErrorMessage,
  describeDatabaseFault,
} from './database-errors.js';

/** A raw-query failure as Prisma 7 with @prisma/adapter-pg reports it (code P2010, the driver error in meta). */
function prismaRawError(cause: Record<string, unknown>) {
  return Object.assign(new Error('Raw query failed'), {
    code: 'P2010',
    meta: { driverAdapterError: { name: 'DriverAdapterError', cause } },
  });
}

/** The same for an error PostgreSQL itself raised, with its SQLSTATE (`code`) and, if given, its message. */
const postgresError = (code: string, originalMessage?: string) =>
  prismaRawError({ kind: 'postgres', code, ...(originalMessage === undefined ? {} : { originalMessage }) });

const codeError = (code: string, message = 'failure') => Object.assign(new Error(message), { code });

describe('classifyDatabaseError', () => {
  it.each([
    [
      'unique violation through the adapter',
      prismaRawError({ originalCode: '23505', kind: 'UniqueConstraintViolation' }),
      'duplicate',
    ],
    ['Prisma P2002 without meta.target', codeError('P2002'), 'duplicate'],
    [
      'database not reachable',
      prismaRawError({ kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 1 }),
      'transient',
    ],
    ['connection closed', prismaRawError({ kind: 'ConnectionClosed' }), 'transient'],
    ['socket timeout', prismaRawError({ kind: 'SocketTimeout' }), 'transient'],
    [
      'too many connections',
      prismaRawError({ originalCode: '53300', kind: 'TooManyConnections' }),
      'transient',
    ],
    ['admin shutdown 57P01', postgresError('57P01'), 'transient'],
    ['cannot connect now 57P03', postgresError('57P03'), 'transient'],
    ['crash shutdown 57P02', postgresError('57P02'), 'transient'],
    ['read-only transaction 25006 (a hot standby)', postgresError('25006'), 'transient'],
    ['idle-in-transaction session ended 25P03', postgresError('25P03'), 'transient'],
    ['permission denied 42501', postgresError('42501'), 'unknown'],
    [
      'serialization failure',
      prismaRawError({ originalCode: '40001', kind: 'TransactionWriteConflict' }),
      'transient',
    ],
    ['pool timeout P2024', codeError('P2024'), 'transient'],
    ['raw ECONNREFUSED', codeError('ECONNREFUSED'), 'transient'],
    ['pg pool connect timeout (no code)', new Error('timeout exceeded when trying to connect'), 'transient'],
    ['pg socket ended (no code)', new Error('Connection terminated unexpectedly'), 'transient'],
    ['pg client-side query timeout (no code)', new Error('Query read timeout'), 'transient'],
    ['statement timeout 57014', postgresError('57014'), 'transient'],
    ['wrapped transient cause', new Error('insert failed', { cause: codeError('ECONNRESET') }), 'transient'],
    ['invalid uuid text', prismaRawError({ originalCode: '22P02', kind: 'InvalidInputValue' }), 'poison'],
    [
      'NUL byte in text',
      prismaRawError({ originalCode: '22021', kind: 'postgres', code: '22021' }),
      'poison',
    ],
    ['check constraint', postgresError('23514'), 'poison'],
    ['not null', prismaRawError({ originalCode: '23502', kind: 'NullConstraintViolation' }), 'poison'],
    ['table missing', prismaRawError({ originalCode: '42P01', kind: 'TableDoesNotExist' }), 'unknown'],
    ['plain error', new Error('something else'), 'unknown'],
    ['not an error at all', 'a string', 'unknown'],
  ])('%s → %s', (_name, error, expected) => {
    expect(classifyDatabaseError(error)).toBe(expected);
  });
});

describe('databaseErrorMessage', () => {
  it("gives the driver's message rather than Prisma's multi-line invocation text", () => {
    const error = prismaRawError({
      originalCode: '23514',
      originalMessage: 'new row violates check constraint "x"',
    });
    error.message = 'Invalid `prisma.$queryRaw()` invocation:\n\n\nRaw query failed.';
    expect(databaseErrorMessage(error)).toBe('new row violates check constraint "x"');
  });

  it('folds any other message onto one line', () => {
    expect(databaseErrorMessage(new Error('line one\n\nline two'))).toBe('line one line two');
  });
});

describe('databaseErrorCode', () => {
  it('prefers the SQLSTATE over the adapter kind and the Prisma code', () => {
    expect(databaseErrorCode(prismaRawError({ originalCode: '22P02', kind: 'InvalidInputValue' }))).toBe(
      '22P02',
    );
  });

  it('falls back to the most specific code there is', () => {
    expect(databaseErrorCode(prismaRawError({ kind: 'DatabaseNotReachable' }))).toBe('DatabaseNotReachable');
  });
});

describe('describeDatabaseFault', () => {
  it.each([
    [
      'a write on a hot standby',
      postgresError('25006', 'cannot execute INSERT in a read-only transaction'),
      'the database is read-only: a standby or a failover in progress (cannot execute INSERT in a read-only transaction)',
    ],
    [
      'an administrator shutdown',
      postgresError('57P01'),
      'the database server is shutting down or ended the session (57P01)',
    ],
    [
      'a server still recovering',
      postgresError('57P03'),
      'the database server is starting up or recovering and takes no connections yet (57P03)',
    ],
    [
      'a refused connection',
      prismaRawError({ kind: 'DatabaseNotReachable', originalMessage: 'connect ECONNREFUSED 127.0.0.1:1' }),
      'the database is unreachable: connect ECONNREFUSED 127.0.0.1:1',
    ],
    [
      'a client-side query timeout (a half-open socket)',
      new Error('Query read timeout'),
      'the database is away or overloaded: Query read timeout',
    ],
    [
      'a missing table',
      postgresError('42P01', 'relation "orders" does not exist'),
      '42P01: relation "orders" does not exist',
    ],
  ])('%s', (_name, error, expected) => {
    expect(describeDatabaseFault(error)).toBe(expected);
  });
});
