import { hostname } from 'node:os';
import {
  deadLetterQueueOf,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_PURCHASE_PATTERN,
  DEFAULT_PURCHASE_QUEUE,
} from '@flashsale/contract';
import { z } from 'zod';
import { nodeListProblems } from '../common/broker-nodes.js';
import { safeText } from '../common/safe-text.js';
import {
  DatabaseUrlError,
  DEFAULT_DATABASE_URL,
  parseDatabaseUrl,
  reconcileDatabaseSettings,
} from '../database/database-url.js';

/**
 * Every setting of the worker, read from the environment: one line of meaning, its unit and its default.
 * README's settings table lists the same names. Unknown values are refused at start-up.
 */
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const amqpNodeList = z.string().superRefine((value, context) => {
  for (const message of nodeListProblems(value)) context.addIssue({ code: 'custom', message });
});
const postgresUrl = z
  .string()
  .url()
  .refine((value) => /^postgres(ql)?:\/\//.test(value), 'must start with postgresql:// or postgres://');
const queueName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\w.:-]+$/, 'letters, digits and . _ : - only');

export const settingsSchema = z
  .object({
    /** Broker to consume from: one URL, or the nodes of a cluster comma-separated (src/common/broker-nodes.ts). */
    RABBITMQ_URL: amqpNodeList.default('amqp://guest:guest@127.0.0.1:5672'),
    /**
     * Database that holds `orders` and `audit_logs`, in Prisma's form: its parameters (`schema`,
     * `connection_limit`, `sslmode`, `pgbouncer`…) are honoured or refused (src/database/database-url.ts).
     */
    DATABASE_URL: postgresUrl.default(DEFAULT_DATABASE_URL),
    /** Queue the purchases arrive on. */
    PURCHASE_QUEUE: queueName.default(DEFAULT_PURCHASE_QUEUE),
    /** Queue for messages that can never succeed; default `<PURCHASE_QUEUE>.dlq`. */
    DEAD_LETTER_QUEUE: queueName.optional(),
    /** Pattern of a NestJS client's envelope (`{pattern, data}`) whose `data` is a purchase; another is poison. */
    PURCHASE_PATTERN: z.string().min(1).max(255).default(DEFAULT_PURCHASE_PATTERN),
    /** Type of the queues the worker declares when they do not exist yet. */
    QUEUE_TYPE: z.enum(['quorum', 'classic']).default('quorum'),
    /** Port of /health, /ready and /metrics; 0 picks a free port and logs it. */
    HTTP_PORT: int(0, 65535).default(3000),
    /** Unacked messages the broker may hand this worker at once (per-consumer QoS). */
    PREFETCH: int(1, 65535).default(1000),
    /** Most purchases written by one INSERT. */
    BATCH_SIZE: int(1, 5000).default(250),
    /** Longest a purchase waits for its batch to fill, in milliseconds. */
    BATCH_WAIT_MS: int(0, 10_000).default(10),
    /** Batches written concurrently by one worker. */
    MAX_BATCHES_IN_FLIGHT: int(1, 64).default(3),
    /**
     * Connections in this worker's PostgreSQL pool (a fleet of N opens N times this); default 4, or the URL's
     * `connection_limit`.
     */
    DB_POOL_SIZE: int(1, 100).optional(),
    /**
     * Longest wait for a pooled connection or a new one, in milliseconds; default 5000, or the URL's
     * `pool_timeout` / `connect_timeout` (seconds).
     */
    DB_CONNECT_TIMEOUT_MS: int(100, 120_000).optional(),
    /**
     * Longest a statement may run, or a transaction stay idle, before the database cancels it
     * (`statement_timeout`, `idle_in_transaction_session_timeout`), in milliseconds: an INSERT blocked on a
     * lock fails and is retried instead of hanging.
     */
    DB_STATEMENT_TIMEOUT_MS: int(100, 3_600_000).default(15_000),
    /**
     * Longest the worker waits for any answer to a query, in milliseconds (client side: a half-open socket
     * after a failover never answers); above DB_STATEMENT_TIMEOUT_MS. Default 20 000, or the URL's
     * `socket_timeout` (seconds).
     */
    DB_QUERY_TIMEOUT_MS: int(100, 3_600_000).optional(),
    /**
     * Whether the worker's statements are prepared once per connection (named) instead of parsed and planned
     * on every batch; `false` behind a PgBouncer older than 1.21 in transaction pooling mode. Default true;
     * false with the URL's `pgbouncer=true` or `statement_cache_size=0`.
     */
    DB_PREPARED_STATEMENTS: z.stringbool().optional(),
    /** Deliveries of one message before the broker dead-letters it (quorum `x-delivery-limit`). */
    MAX_DELIVERIES: int(1, 1000).default(10),
    /** Largest message body accepted, in bytes; a larger one is poison. */
    MAX_MESSAGE_BYTES: int(64, 16 * 1024 * 1024).default(DEFAULT_MAX_MESSAGE_BYTES),
    /** First back-off after a transient failure, in milliseconds (doubles each attempt, with jitter). */
    RETRY_BASE_MS: int(1, 600_000).default(200),
    /**
     * Longest back-off of every wait for something to recover, in milliseconds; one ceiling for all, so that an
     * operator knows how long the worker can take to notice a recovery: a message before its requeue, a
     * batch before its next attempt, the consumer before consuming again, the database probes of the open
     * circuit, and the audit trail before its next write.
     */
    RETRY_MAX_MS: int(1, 3_600_000).default(30_000),
    /**
     * Attempts at a batch that fails with an unclassified error before its messages go back to the broker
     * (requeued after a back-off, counted toward MAX_DELIVERIES).
     */
    RETRY_MAX_ATTEMPTS: int(1, 1000).default(8),
    /** Consecutive transient database failures that open the circuit (stop consuming, probe). */
    CIRCUIT_FAILURE_THRESHOLD: int(1, 1000).default(3),
    /** Audit events written by one flush as soon as this many are buffered. */
    AUDIT_BATCH_SIZE: int(1, 10_000).default(100),
    /** Longest an audit event waits in the buffer, in milliseconds. */
    AUDIT_FLUSH_INTERVAL_MS: int(10, 600_000).default(1000),
    /** Most audit events held in memory; past it new events are dropped and counted. */
    AUDIT_BUFFER_MAX: int(100, 10_000_000).default(100_000),
    /** Time allowed for a graceful shutdown, in milliseconds (below the 30 s of compose and Kubernetes). */
    SHUTDOWN_DEADLINE_MS: int(100, 600_000).default(25_000),
    /**
     * How long the worker may fail to consume (broker unreachable, queue missing, permission refused; not
     * while paused on purpose) before /health reports it unhealthy so that it is restarted, in milliseconds.
     */
    NOT_CONSUMING_UNHEALTHY_MS: int(1000, 86_400_000).default(300_000),
    /** Interval of the passive queue-depth checks behind the depth gauges, in milliseconds. */
    QUEUE_DEPTH_POLL_MS: int(100, 600_000).default(5000),
    /**
     * Most warn lines about single messages (dead-lettered, handed back for redelivery) one worker writes per
     * 10 s; past it they are counted, and one warn line per 10 s says how many were left out. 0: no limit.
     */
    MESSAGE_WARNINGS_PER_10S: int(0, 1_000_000).default(100),
    /** Log level: fatal, error, warn, info, debug or trace. */
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
    /** Name of this worker in logs and metrics; default `<hostname>-<pid>`. */
    WORKER_ID: z.string().min(1).max(100).optional(),
  })
  .transform((raw, context) => ({
    ...raw,
    ...databaseSettings(raw, context),
    DEAD_LETTER_QUEUE: raw.DEAD_LETTER_QUEUE ?? deadLetterQueueOf(raw.PURCHASE_QUEUE),
    WORKER_ID: raw.WORKER_ID ?? `${hostname()}-${process.pid}`,
  }))
  .superRefine((settings, context) => {
    for (const [path, message] of crossFieldProblems(settings)) {
      context.addIssue({ code: 'custom', path: [path], message });
    }
  });

/** Rules between settings, checked at start-up on the values in force (defaults and the URL's included). */
function crossFieldProblems(settings: {
  DB_STATEMENT_TIMEOUT_MS: number;
  DB_QUERY_TIMEOUT_MS: number;
  RETRY_BASE_MS: number;
  RETRY_MAX_MS: number;
  AUDIT_BATCH_SIZE: number;
  AUDIT_BUFFER_MAX: number;
}): [string, string][] {
  const problems: [string, string][] = [];
  if (settings.DB_QUERY_TIMEOUT_MS <= settings.DB_STATEMENT_TIMEOUT_MS) {
    problems.push([
      'DB_QUERY_TIMEOUT_MS',
      `${settings.DB_QUERY_TIMEOUT_MS} must be above DB_STATEMENT_TIMEOUT_MS (${settings.DB_STATEMENT_TIMEOUT_MS}): ` +
        'the database cancels a slow statement first, the client only waits out a dead socket',
    ]);
  }
  if (settings.RETRY_BASE_MS > settings.RETRY_MAX_MS) {
    problems.push([
      'RETRY_BASE_MS',
      `${settings.RETRY_BASE_MS} must not be above RETRY_MAX_MS (${settings.RETRY_MAX_MS})`,
    ]);
  }
  if (settings.AUDIT_BATCH_SIZE > settings.AUDIT_BUFFER_MAX) {
    problems.push([
      'AUDIT_BATCH_SIZE',
      `${settings.AUDIT_BATCH_SIZE} must not be above AUDIT_BUFFER_MAX (${settings.AUDIT_BUFFER_MAX}): a batch would never fill`,
    ]);
  }
  return problems;
}

export type Settings = z.output<typeof settingsSchema>;

const DATABASE_DEFAULTS = {
  DB_POOL_SIZE: 4,
  DB_CONNECT_TIMEOUT_MS: 5000,
  DB_QUERY_TIMEOUT_MS: 20_000,
  DB_PREPARED_STATEMENTS: true,
};

/**
 * DATABASE_URL parsed once, with the pool settings its parameters may give; a parameter the worker cannot
 * honour, or one that disagrees with its setting, is a problem of DATABASE_URL (whose value is never shown).
 */
function databaseSettings(
  raw: { DATABASE_URL: string } & Partial<typeof DATABASE_DEFAULTS>,
  context: z.RefinementCtx,
) {
  try {
    const databaseUrl = parseDatabaseUrl(raw.DATABASE_URL);
    return { ...reconcileDatabaseSettings(databaseUrl, raw, DATABASE_DEFAULTS), databaseUrl };
  } catch (error) {
    if (!(error instanceof DatabaseUrlError)) throw error;
    for (const message of error.problems)
      context.addIssue({ code: 'custom', message, path: ['DATABASE_URL'] });
    return z.NEVER;
  }
}

/** Injection token of the validated settings (src/worker.module.ts). */
export const SETTINGS = Symbol('SETTINGS');

/** A setting the worker cannot start with; names the setting and the rule. */
export class InvalidSettingsError extends Error {
  override readonly name = 'InvalidSettingsError';
  constructor(readonly problems: string[]) {
    super(`invalid settings:\n  ${problems.join('\n  ')}`);
  }
}

/** Reads the settings from `env` (empty strings count as unset) or throws naming every bad one. */
export function parseSettings(env: NodeJS.ProcessEnv): Settings {
  const present = Object.fromEntries(
    Object.entries(env).filter(([key, value]) => key in settingsSchema.in.shape && value !== ''),
  );
  const parsed = settingsSchema.safeParse(present);
  if (parsed.success) return parsed.data;
  throw new InvalidSettingsError(
    parsed.error.issues.map((issue) => {
      const name = issue.path.join('.');
      // A connection URL may carry a password: name the setting, never echo its value.
      const value = env[name];
      const shown = name.endsWith('_URL')
        ? ' (value hidden)'
        : value === undefined
          ? ''
          : `=${quotedValue(value)}`;
      return `${name}${shown}: ${issue.message}`;
    }),
  );
}

/**
 * A setting's value as an error message shows it: quoted, at most 100 characters, without the control and
 * bidi characters that would rewrite an operator's terminal.
 */
export function quotedValue(value: string): string {
  return JSON.stringify(safeText(value, 100));
}
