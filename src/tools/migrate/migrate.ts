/**
 * Applies `prisma/migrations/<stamp>_<name>/migration.sql` in order and records each in Prisma's own
 * `_prisma_migrations` ledger, so `prisma migrate deploy` (where the schema engine exists) and this offline
 * path agree on what has been applied. Creates the database first if it is missing (and only then connects to
 * the server's maintenance database). Reads DATABASE_URL as the worker does (src/database/database-url.ts): with
 * `?schema=`, as `prisma migrate deploy` does, the schema is created if missing and holds the ledger and the
 * tables.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { redactCredentials } from '../../common/log-redaction.js';
import {
  type DatabaseUrl,
  DatabaseUrlError,
  DEFAULT_DATABASE_URL,
  parseDatabaseUrl,
} from '../../database/database-url.js';
import { quoteIdentifier } from '../../database/startup-options.js';

const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../prisma/migrations');
const SOURCE_MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../prisma/migrations');
// Any number: every migrator of every replica takes the same lock, so concurrent runs apply each file once.
const MIGRATION_LOCK_KEY = 72_707_369;

const LEDGER_DDL = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  /** The ROLLBACK's own failure, when undoing a failed migration failed too. */
  readonly rollbackError: Error | undefined;
  constructor(
    message: string,
    readonly migration?: string,
    options?: ErrorOptions & { rollbackError?: Error | undefined },
  ) {
    super(message, options);
    this.rollbackError = options?.rollbackError;
  }
}

/** What applying one migration needs of a connection. */
export interface MigrationClient {
  query(sql: string, values?: unknown[]): Promise<unknown>;
}

export interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

async function migrationsDirectory(): Promise<string> {
  for (const candidate of [MIGRATIONS_DIR, SOURCE_MIGRATIONS_DIR]) {
    const found = await readdir(candidate).then(
      () => true,
      () => false,
    );
    if (found) return candidate;
  }
  throw new MigrationError(`no prisma/migrations folder at ${MIGRATIONS_DIR} or ${SOURCE_MIGRATIONS_DIR}`);
}

async function readMigrations(directory: string): Promise<MigrationFile[]> {
  const entries = await readdir(directory, { withFileTypes: true });
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(directory, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

// SQLSTATE of a connection to a database that does not exist.
const INVALID_CATALOG_NAME = '3D000';
// The database every PostgreSQL server has, from which a missing one is created.
const MAINTENANCE_DATABASE = 'postgres';

/**
 * A connection to the database named in `databaseUrl`, created first when the server says it does not exist.
 * The target comes first: behind PgBouncer, or for a role without access to the maintenance database, only the
 * target is reachable, and it usually exists already.
 */
async function connectCreatingIfMissing(target: DatabaseUrl): Promise<pg.Client> {
  const { database } = target.client;
  const client = new pg.Client(target.client);
  try {
    await client.connect();
    return client;
  } catch (error) {
    if ((error as { code?: string }).code !== INVALID_CATALOG_NAME) throw error;
  }
  await createDatabase(target, database);
  const created = new pg.Client(target.client);
  await created.connect();
  return created;
}

async function createDatabase(target: DatabaseUrl, database: string): Promise<void> {
  const client = new pg.Client({ ...target.client, database: MAINTENANCE_DATABASE });
  try {
    await client.connect();
  } catch (error) {
    throw new MigrationError(
      `database "${database}" does not exist and cannot be created: no connection to the ${MAINTENANCE_DATABASE} database (${redactCredentials((error as Error).message)})`,
      undefined,
      { cause: error },
    );
  }
  try {
    await client.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`).catch((error: unknown) => {
      // Another replica created it between our check and our CREATE: that is the state we wanted.
      // PostgreSQL reports that race as 42P04 (duplicate_database) or, mid-creation, 23505 on its catalog.
      const code = (error as { code?: string }).code;
      if (code !== '42P04' && code !== '23505') throw error;
    });
  } finally {
    await client.end();
  }
}

/** Applies every pending migration; returns the names applied by this call. */
export async function applyMigrations(databaseUrl: string): Promise<string[]> {
  const target = migrationTarget(databaseUrl);
  const migrations = await readMigrations(await migrationsDirectory());
  const client = await connectCreatingIfMissing(target);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    if (target.schema !== undefined) await useSchema(client, target.schema);
    await client.query(LEDGER_DDL);
    const ledger = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
      'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL',
    );
    const recorded = new Map(ledger.rows.map((row) => [row.migration_name, row]));
    const applied: string[] = [];
    for (const migration of migrations) {
      const previous = recorded.get(migration.name);
      if (previous?.finished_at) {
        if (previous.checksum !== migration.checksum) {
          throw new MigrationError(
            `migration ${migration.name} was edited after it was applied (checksum differs)`,
            migration.name,
          );
        }
        continue;
      }
      if (previous) {
        throw new MigrationError(
          `migration ${migration.name} started earlier and did not finish; resolve it before applying more`,
          migration.name,
        );
      }
      await applyOne(client, migration);
      applied.push(migration.name);
    }
    return applied;
  } finally {
    // Ending the session releases the lock anyway: a failed unlock (a dead connection) changes nothing.
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
}

function migrationTarget(databaseUrl: string): DatabaseUrl {
  try {
    return parseDatabaseUrl(databaseUrl);
  } catch (error) {
    if (!(error instanceof DatabaseUrlError)) throw error;
    throw new MigrationError(error.message, undefined, { cause: error });
  }
}

/**
 * Creates `schema` if missing (under the lock: two migrators never race on it) and checks that the session's
 * `search_path`, sent at start-up, leads there: a pooler that drops start-up options would otherwise put the
 * tables in `public` without a word.
 */
async function useSchema(client: pg.Client, schema: string): Promise<void> {
  // Created only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when it exists.
  const existing = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  if (existing.rowCount === 0) await client.query(`CREATE SCHEMA ${quoteIdentifier(schema)}`);
  const current = await client.query<{ schema: string | null }>('SELECT current_schema() AS schema');
  if (current.rows[0]?.schema !== schema) {
    throw new MigrationError(
      `the session's search_path does not lead to schema ${quoteIdentifier(schema)} (current schema: ${String(current.rows[0]?.schema)}): does a pooler drop the start-up options?`,
    );
  }
}

/**
 * Applies one migration in a transaction with its ledger row. When it fails, the error thrown is the
 * migration's: a ROLLBACK that fails too (the connection broke under the migration) is named in the message
 * and kept as `rollbackError`, and PostgreSQL rolls the transaction back itself when the session ends.
 */
export async function applyOne(client: MigrationClient, migration: MigrationFile): Promise<void> {
  try {
    await client.query('BEGIN');
    await client.query(migration.sql);
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
       VALUES ($1, $2, $3, now(), 1)`,
      [randomUUID(), migration.checksum, migration.name],
    );
    await client.query('COMMIT');
  } catch (error) {
    const rollbackError = await client.query('ROLLBACK').then(
      () => undefined,
      (rollbackFailure: unknown) => rollbackFailure as Error,
    );
    throw new MigrationError(
      `migration ${migration.name} failed: ${(error as Error).message}` +
        (rollbackError ? ` (and its ROLLBACK failed too: ${rollbackError.message})` : ''),
      migration.name,
      { cause: error, rollbackError },
    );
  }
}

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
  const applied = await applyMigrations(databaseUrl);
  const where = redactCredentials(databaseUrl);
  console.log(
    applied.length
      ? `applied ${applied.join(', ')} to ${where}`
      : `${where} is up to date: no pending migrations`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? `${error.name}: ${error.message}` : error);
    process.exit(1);
  });
}
