import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service.js';
import { orderKey, type Purchase } from './purchase.schema.js';

/** Orders inserted by one batch, by order key, with their commit time. */
export type InsertedOrders = Map<string, Date>;

/**
 * Inserts a batch of orders in one statement and one round trip. The rows travel as one JSON parameter
 * (`json_to_recordset`), in the batch's order: one string to serialise, instead of three arrays that the
 * driver escapes element by element. ON CONFLICT DO NOTHING tells which rows are new; every other purchase of
 * the batch is a duplicate of an order that exists. The new keys come back as one JSON text in one row.
 * The statement commits on its own (autocommit): when it returns, the new orders are durable.
 */
@Injectable()
export class OrderWriter {
  constructor(private readonly prisma: PrismaService) {}

  /** `purchases` must hold each order key once (see PurchaseBatcher). */
  async insert(purchases: readonly Purchase[]): Promise<InsertedOrders> {
    const rows = JSON.stringify(
      // The purchase time as epoch milliseconds: a Date's JSON form of a year past 9999 ("+010000-…", a valid
      // purchase made late on 9999-12-31 west of UTC) is not one PostgreSQL reads.
      purchases.map((purchase) => ({
        s: purchase.saleId,
        u: purchase.userId,
        t: purchase.timestamp.getTime(),
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
