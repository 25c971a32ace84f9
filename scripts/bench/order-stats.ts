import type pg from 'pg';

export interface LatencyPercentiles {
  p50: number;
  p95: number;
  p99: number;
}

/** What the orders table says about the orders of some sales. */
export interface OrderStats {
  orders: number;
  /** Earliest purchase time (= publish time) and first and last commit, undefined without orders. */
  firstPurchasedAt?: Date;
  firstCommittedAt?: Date;
  lastCommittedAt?: Date;
  /** Publish→commit latency (created_at − purchased_at), in milliseconds. */
  latencyMs?: LatencyPercentiles;
  /** When the 10th and the 90th percent of the orders were committed: the run without start-up and tail. */
  steadyWindow?: { from: Date; to: Date };
}

/** Orders of these sales, counted fast (for polling while a run settles). */
export async function countOrders(sql: pg.Pool, saleIds: readonly string[]): Promise<number> {
  const result = await sql.query<{ orders: number }>(
    'SELECT count(*)::int AS orders FROM orders WHERE sale_id = ANY($1::uuid[])',
    [saleIds],
  );
  return result.rows[0]?.orders ?? 0;
}

/**
 * Count, commit window and latency percentiles of the orders of these sales. `created_at` is the time of the
 * inserting statement (the worker commits right after it) and `purchased_at` the publisher's stamp; both
 * clocks are the same host's in a load test, at millisecond precision.
 */
export async function readOrderStats(sql: pg.Pool, saleIds: readonly string[]): Promise<OrderStats> {
  const result = await sql.query<{
    orders: number;
    first_purchased_at: Date | null;
    first_committed_at: Date | null;
    last_committed_at: Date | null;
    latency_ms: number[] | null;
    steady_window: Date[] | null;
  }>(
    `SELECT count(*)::int AS orders,
            min(purchased_at) AS first_purchased_at,
            min(created_at) AS first_committed_at,
            max(created_at) AS last_committed_at,
            percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
              ORDER BY extract(epoch FROM created_at - purchased_at) * 1000
            ) AS latency_ms,
            percentile_disc(ARRAY[0.1, 0.9]) WITHIN GROUP (ORDER BY created_at) AS steady_window
       FROM orders WHERE sale_id = ANY($1::uuid[])`,
    [saleIds],
  );
  const row = result.rows[0];
  if (!row || row.orders === 0) return { orders: 0 };
  const [p50 = 0, p95 = 0, p99 = 0] = (row.latency_ms ?? []).map(Number);
  const [from, to] = row.steady_window ?? [];
  return {
    steadyWindow: from && to ? { from, to } : undefined,
    orders: row.orders,
    firstPurchasedAt: row.first_purchased_at ?? undefined,
    firstCommittedAt: row.first_committed_at ?? undefined,
    lastCommittedAt: row.last_committed_at ?? undefined,
    latencyMs: { p50, p95, p99 },
  };
}
