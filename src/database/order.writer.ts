import type { PrismaService } from './prisma.service.js';

/** One order to insert: a row of `orders`. */
export interface OrderRow {
  saleId: string;
  userId: string;
  timestamp: Date;
}

/** The key UNIQUE (sale_id, user_id) compares: two purchases with the same key are one order. */
export function orderKey(order: Pick<OrderRow, 'saleId' | 'userId'>): string {
  return `${order.saleId}\u0000${order.userId}`;
}

/** Orders inserted by one batch, by order key, with their commit time. */
export type InsertedOrders = Map<string, Date>;

/**
 * Inserts a batch of orders in one statement and one round trip. The rows travel as one JSON parameter
 * (`json_to_recordset`), in the batch's order: one string to serialise, instead of three arrays that the
 * driver escapes element by element. ON CONFLICT DO NOTHING tells which rows are new; every other purchase of
 * the batch is a duplicate of an order that exists. The new keys come back as one JSON text in one row.
 * The statement commits on its own (autocommit): when it returns, the new orders are durable.
 */
export class OrderWriter {
  constructor(private readonly prisma: PrismaService) {}

  /** `orders` must hold each order key once (see PurchaseBatcher). */
  async insert(orders: readonly OrderRow[]): Promise<InsertedOrders> {
    const rows = JSON.stringify(
      // The purchase time as epoch milliseconds: a Date's JSON form of a year past 9999 ("+010000-…", a valid
      // purchase made late on 9999-12-31 west of UTC) is not one PostgreSQL reads.
      orders.map((order) => ({
        s: order.saleId,
        u: order.userId,
        t: order.timestamp.getTime(),
      })),
    );
    const [result] = await this.prisma.$queryRaw<{ keys: string; committed_at: Date | null }[]>`
      WITH inserted AS (
        INSERT INTO orders (sale_id, user_id, purchased_at)
        SELECT s, u, to_timestamp(t / 1000.0)
        FROM json_to_recordset(${rows}::json) AS input(s uuid, u text, t bigint)
        ON CONFLICT (sale_id, user_id) DO NOTHING
        RETURNING sale_id, user_id, created_at)
      SELECT coalesce(json_agg(json_build_array(sale_id, user_id)), '[]')::text AS keys,
             max(created_at) AS committed_at
      FROM inserted`;
    const inserted: InsertedOrders = new Map();
    if (!result?.committed_at) return inserted;
    for (const [saleId, userId] of JSON.parse(result.keys) as [string, string][]) {
      inserted.set(orderKey({ saleId, userId }), result.committed_at);
    }
    return inserted;
  }
}
