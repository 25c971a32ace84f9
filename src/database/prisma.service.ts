import { PrismaPg } from '@prisma/adapter-pg';
import { createHash } from 'node:crypto';
import type { Settings } from '../config/settings.js';
import { connectionName } from './database-url.js';
import { PrismaClient } from '../generated/prisma/client.js';

/**
 * The one Prisma client of a worker, on a `pg` pool whose size and connect timeout are set explicitly
 * (pg's defaults are 10 connections and waiting forever). No query may hang: the server cancels a statement
 * past `statement_timeout` (a lock held by a migration), the client gives up past `query_timeout` (a
 * half-open socket after a failover), and TCP keep-alive finds dead peers; each such failure is transient
 * (retried, counted by the circuit breaker), never acked. Closed by the Worker only.
 */
export class PrismaService extends PrismaClient {
  constructor(settings: Settings) {
    super({
      adapter: new PrismaPg(
        {
          // DATABASE_URL as parsed at settings time, never as a connectionString: node-postgres would read
          // every URL parameter as an option of its own, over the ones below (src/database/database-url.ts).
          ...settings.databaseUrl.client,
          max: settings.DB_POOL_SIZE,
          connectionTimeoutMillis: settings.DB_CONNECT_TIMEOUT_MS,
          idleTimeoutMillis: settings.databaseUrl.idleTimeoutMs ?? 30_000,
          maxLifetimeSeconds: settings.databaseUrl.maxLifetimeSeconds,
          statement_timeout: settings.DB_STATEMENT_TIMEOUT_MS,
          idle_in_transaction_session_timeout: settings.DB_STATEMENT_TIMEOUT_MS,
          query_timeout: settings.DB_QUERY_TIMEOUT_MS,
          keepAlive: true,
          keepAliveInitialDelayMillis: 10_000,
          application_name: connectionName(settings.databaseUrl, settings.WORKER_ID),
        },
        {
          schema: settings.databaseUrl.schema,
          ...(settings.DB_PREPARED_STATEMENTS
            ? { statementNameGenerator: ({ sql }) => statementName(sql) }
            : {}),
        },
      ),
      // No stack trace captured up front for every query; the errors say as much without it
      // (docs/benchmarks.md, "Prisma's minimal error format").
      errorFormat: 'minimal',
    });
  }

  /** Resolves when the database answers a trivial query; used by the circuit breaker and /ready. */
  async ping(): Promise<void> {
    await this.$queryRaw`SELECT 1`;
  }
}

const statementNames = new Map<string, string>();

/**
 * A prepared statement's name for each SQL text: every connection parses and plans the order INSERT, the
 * audit INSERT and the probe once, then only binds and executes them (PostgreSQL keeps them per connection).
 */
export function statementName(sql: string): string {
  let name = statementNames.get(sql);
  if (name === undefined) {
    name = `fsw_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`;
    statementNames.set(sql, name);
  }
  return name;
}
