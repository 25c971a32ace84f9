import { describe, expect, it } from '@jest/globals';
import { applyOne, type MigrationClient, MigrationError, type MigrationFile } from './migrate.js';

const MIGRATION: MigrationFile = {
  name: '20260101000000_orders',
  sql: 'CREATE TABLE orders (id uuid PRIMARY KEY)',
  checksum: 'c'.repeat(64),
};

/** A connection that writes down every statement and fails the ones it is told to, with their errors. */
class FailingClient implements MigrationClient {
  readonly statements: string[] = [];

  constructor(private readonly failures: Map<string, Error>) {}

  query(sql: string): Promise<unknown> {
    const verb = sql.trim().split(/\s+/)[0] as string;
    this.statements.push(verb);
    const failure = this.failures.get(verb);
    return failure ? Promise.reject(failure) : Promise.resolve({ rows: [] });
  }
}

async function failureOf(client: MigrationClient): Promise<MigrationError> {
  const error = await applyOne(client, MIGRATION).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof MigrationError)) throw new Error(`expected a MigrationError, got ${String(error)}`);
  return error;
}

describe('applyOne', () => {
  it('commits the migration with its ledger row in one transaction', async () => {
    const client = new FailingClient(new Map());
    await applyOne(client, MIGRATION);
    expect(client.statements).toEqual(['BEGIN', 'CREATE', 'INSERT', 'COMMIT']);
  });

  it('rolls back and throws the migration error, with the migration named', async () => {
    const original = new Error('relation "orders" already exists');
    const client = new FailingClient(new Map([['CREATE', original]]));
    const error = await failureOf(client);
    expect(client.statements).toEqual(['BEGIN', 'CREATE', 'ROLLBACK']);
    expect(error).toMatchObject({ migration: MIGRATION.name, cause: original, rollbackError: undefined });
    expect(error.message).toBe(`migration ${MIGRATION.name} failed: relation "orders" already exists`);
  });

  it('throws the migration error, not the ROLLBACK error, when the connection broke under both', async () => {
    const original = new Error('Connection terminated unexpectedly');
    const rollbackFailure = new Error('Client has encountered a connection error and is not queryable');
    const client = new FailingClient(
      new Map([
        ['CREATE', original],
        ['ROLLBACK', rollbackFailure],
      ]),
    );
    const error = await failureOf(client);
    expect(error).toMatchObject({
      migration: MIGRATION.name,
      cause: original,
      rollbackError: rollbackFailure,
    });
    expect(error.message).toBe(
      `migration ${MIGRATION.name} failed: Connection terminated unexpectedly ` +
        '(and its ROLLBACK failed too: Client has encountered a connection error and is not queryable)',
    );
  });
});
