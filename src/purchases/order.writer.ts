import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service.js';
import { orderKey, type Purchase } from './purchase.schema.js';

/** Orders inserted by one batch, by order key, with their commit time. */
export type InsertedOrders = Map<string, Date>;

/**
 * Inserts a batch of orders in one statement and one round trip. ON CONFLICT DO NOTHING RETURNING tells
 * which rows are new; every other purchase of the batch is a duplicate of an order that exists.
 * The statement commits on its own (autocommit): when it returns, the new orders are durable.
 */
@Injectable()
export class OrderWriter {
  constructor(private readonly prisma: PrismaService) {}

  /** `purchases` must hold each order key once (see PurchaseBatcher). */
  async insert(purchases: readonly Purchase[]): Promise<InsertedOrders> {
    const saleIds: string[] = new Array<string>(purchases.length);
    const userIds: string[] = new Array<string>(purchases.length);
    const purchasedAt: Date[] = new Array<Date>(purchases.length);
    purchases.forEach((purchase, index) => {
      saleIds[index] = purchase.saleId;
      userIds[index] = purchase.userId;
      purchasedAt[index] = purchase.timestamp;
    });
    const rows = await this.prisma.$queryRaw<{ sale_id: string; user_id: string; created_at: Date }[]>`
      INSERT INTO orders (sale_id, user_id, purchased_at)
      SELECT * FROM unnest(${saleIds}::uuid[], ${userIds}::text[], ${purchasedAt}::timestamptz[])
      ON CONFLICT (sale_id, user_id) DO NOTHING
      RETURNING sale_id::text, user_id, created_at`;
    const inserted: InsertedOrders = new Map();
    for (const row of rows)
      inserted.set(orderKey({ saleId: row.sale_id, userId: row.user_id }), row.created_at);
    return inserted;
  }
}
