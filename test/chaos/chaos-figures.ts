import type pg from 'pg';
import { pairKey, type PurchaseMix } from './purchase-mix.js';
import type { PurchaseChannel } from './purchase-channel.js';

/** What the database and the broker hold once the fleet has stopped, set against what was published. */
export interface ChaosFigures {
  published: number;
  expectedOrders: number;
  orders: number;
  distinctOrderPairs: number;
  ordersNotPublished: number;
  publishedPairsWithoutOrder: number;
  ordersWithUnpublishedTimestamp: number;
  purchaseQueueDepth: number;
  poisonPublished: number;
  deadLettered: number;
  deadLetteredValid: number;
  deadLetteredWithoutReason: number;
  poisonNotDeadLettered: number;
  poisonDeadLetteredTwice: number;
  /** Each poison message dead-lettered more than once: its copies as `<x-rejected-by>@<delivery> <x-first-seen>`. */
  repeatedDeadLetters: string[];
  /** For each poison message dead-lettered more than once, the workers (`x-rejected-by`) that wrote its copies. */
  repeatedDeadLetterWriters: string[][];
  auditByEvent: Record<string, number>;
  confirmedAuditRepeats: number;
  confirmedAuditWithoutOrder: number;
  ordersWithoutAudit: number;
}

async function countOf(sql: pg.Pool, query: string): Promise<number> {
  const result = await sql.query<{ count: string }>(query);
  return Number(result.rows[0]?.count ?? NaN);
}

/** The orders in the database now. */
export function orderCount(sql: pg.Pool): Promise<number> {
  return countOf(sql, 'SELECT count(*) AS count FROM orders');
}

async function orderFigures(sql: pg.Pool, mix: PurchaseMix) {
  const rows = (
    await sql.query<{ sale_id: string; user_id: string; purchased_ms: string }>(
      `SELECT sale_id::text, user_id, (extract(epoch FROM purchased_at) * 1000)::bigint AS purchased_ms
         FROM orders`,
    )
  ).rows;
  const seen = new Set<string>();
  let ordersNotPublished = 0;
  let ordersWithUnpublishedTimestamp = 0;
  for (const row of rows) {
    const key = pairKey(row.sale_id, row.user_id);
    seen.add(key);
    const timestamps = mix.timestampsByPair.get(key);
    if (!timestamps) ordersNotPublished += 1;
    else if (!timestamps.has(Number(row.purchased_ms))) ordersWithUnpublishedTimestamp += 1;
  }
  return {
    orders: rows.length,
    distinctOrderPairs: await countOf(sql, 'SELECT count(DISTINCT (sale_id, user_id)) AS count FROM orders'),
    ordersNotPublished,
    publishedPairsWithoutOrder: [...mix.timestampsByPair.keys()].filter((key) => !seen.has(key)).length,
    ordersWithUnpublishedTimestamp,
  };
}

async function deadLetterFigures(channel: PurchaseChannel, deadLetterQueue: string, mix: PurchaseMix) {
  const messages = await channel.drain(deadLetterQueue);
  const copies = new Map<string, string[]>();
  const writers = new Map<string, string[]>();
  let deadLetteredValid = 0;
  let deadLetteredWithoutReason = 0;
  for (const message of messages) {
    const body = message.content.toString();
    const headers = message.properties.headers ?? {};
    if (mix.poisonBodies.has(body)) {
      const copy = `${String(headers['x-rejected-by'])}@${String(headers['x-rejected-at-delivery'])} ${String(headers['x-first-seen'])}`;
      copies.set(body, [...(copies.get(body) ?? []), copy]);
      writers.set(body, [...(writers.get(body) ?? []), String(headers['x-rejected-by'])]);
    } else {
      deadLetteredValid += 1;
    }
    const reason: unknown = headers['x-rejection-reason'];
    if (typeof reason !== 'string' || reason === '') deadLetteredWithoutReason += 1;
  }
  const repeated = [...copies.entries()].filter(([, copiesOfBody]) => copiesOfBody.length > 1);
  return {
    deadLettered: messages.length,
    deadLetteredValid,
    deadLetteredWithoutReason,
    poisonNotDeadLettered: mix.poisonBodies.size - copies.size,
    poisonDeadLetteredTwice: repeated.length,
    repeatedDeadLetterWriters: repeated.map(([body]) => writers.get(body) ?? []),
    repeatedDeadLetters: repeated.map(
      ([body, copiesOfBody]) => `${body.slice(0, 60)}: ${copiesOfBody.join(', ')}`,
    ),
  };
}

async function auditFigures(sql: pg.Pool) {
  const events = await sql.query<{ event: string; count: string }>(
    'SELECT event, count(*) AS count FROM audit_logs GROUP BY event ORDER BY event',
  );
  return {
    auditByEvent: Object.fromEntries(events.rows.map((row) => [row.event, Number(row.count)])),
    confirmedAuditRepeats: await countOf(
      sql,
      `SELECT count(*) - count(DISTINCT (sale_id, user_id)) AS count FROM audit_logs
        WHERE event = 'ORDER_CONFIRMED'`,
    ),
    confirmedAuditWithoutOrder: await countOf(
      sql,
      `SELECT count(*) AS count FROM audit_logs a
        WHERE a.event = 'ORDER_CONFIRMED'
          AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.sale_id = a.sale_id AND o.user_id = a.user_id)`,
    ),
    ordersWithoutAudit: await countOf(
      sql,
      `SELECT count(*) AS count FROM orders o
        WHERE NOT EXISTS (SELECT 1 FROM audit_logs a
                           WHERE a.event IN ('ORDER_CONFIRMED', 'ORDER_DUPLICATE')
                             AND a.sale_id = o.sale_id AND a.user_id = o.user_id)`,
    ),
  };
}

/** Reads every figure; takes the DLQ's messages off it (basic.get) to compare their bodies. */
export async function collectFigures(
  sql: pg.Pool,
  channel: PurchaseChannel,
  queues: { purchase: string; deadLetter: string },
  mix: PurchaseMix,
): Promise<ChaosFigures> {
  return {
    published: mix.bodies.length,
    expectedOrders: mix.timestampsByPair.size,
    poisonPublished: mix.poisonBodies.size,
    purchaseQueueDepth: await channel.depth(queues.purchase),
    ...(await orderFigures(sql, mix)),
    ...(await deadLetterFigures(channel, queues.deadLetter, mix)),
    ...(await auditFigures(sql)),
  };
}

/** A two-column table of labelled values, for console.log. */
export function table(title: string, rows: [string, string | number][]): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = rows.map(([label, value]) => `  ${label.padEnd(width)}  ${String(value)}`);
  return [title, ...lines].join('\n');
}
