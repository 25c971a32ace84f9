import type { PrismaService } from '../database/prisma.service.js';

/** An order as a reply names it: its id and when it was committed (`orders.created_at`). */
export interface CommittedOrder {
  id: string;
  committedAt: Date;
}

/** The key of an order: UNIQUE (sale_id, user_id). */
export interface OrderKey {
  saleId: string;
  userId: string;
}

/** Finds committed orders by key, for the replies of a settled batch. */
export interface OrderLookup {
  /** The order of each key, by position; undefined where there is none. */
  find(keys: readonly OrderKey[]): Promise<(CommittedOrder | undefined)[]>;
}

/**
 * Reads the orders that replies name, one query for all the replies of a settled batch. Only messages that
 * asked for a reply pay for it, after their ack: the order INSERT returns only which rows are new, and stays
 * as fast as it is. The keys travel as one JSON parameter, with their position, as the INSERT's rows do.
 */
export class ReplyOrderLookup implements OrderLookup {
  constructor(private readonly prisma: PrismaService) {}

  async find(keys: readonly OrderKey[]): Promise<(CommittedOrder | undefined)[]> {
    const found = new Array<CommittedOrder | undefined>(keys.length).fill(undefined);
    if (keys.length === 0) return found;
    const rows = JSON.stringify(keys.map((key, index) => ({ i: index, s: key.saleId, u: key.userId })));
    const orders = await this.prisma.$queryRaw<{ i: number; id: string; created_at: Date }[]>`
      SELECT input.i, orders.id::text AS id, orders.created_at
      FROM json_to_recordset(${rows}::json) AS input(i int, s uuid, u text)
      JOIN orders ON orders.sale_id = input.s AND orders.user_id = input.u`;
    for (const order of orders) found[order.i] = { id: order.id, committedAt: order.created_at };
    return found;
  }
}
