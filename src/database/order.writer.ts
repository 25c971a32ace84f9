import type { PrismaService } from './prisma.service.js';

/** One order to insert: a row of `orders`. */
export interface OrderRow {
  saleId: string;
  userId: string;
  timestamp: Date;
}

/** Which orders of a batch were new, by their position in the batch given, and when they committed. */
export interface InsertedOrders {
  /** `isNew[i]`: the i-th order was inserted now; false: an order with its key existed (a duplicate). */
  isNew: readonly boolean[];
  /** The commit time of the new orders; undefined when none was new. */
  committedAt: Date | undefined;
}

/**
 * The order of two orders' keys (sale, then user), as UNIQUE (sale_id, user_id) tells them apart: 0 for one
 * order. Both fields compare by UTF-16 code units, the same in every worker of a fleet, so two batches with
 * overlapping keys lock them in the same order and never wait on each other in a cycle (a deadlock, 40P01).
 */
export function compareOrderKeys(a: OrderKey, b: OrderKey): number {
  if (a.saleId !== b.saleId) return a.saleId < b.saleId ? -1 : 1;
  if (a.userId !== b.userId) return a.userId < b.userId ? -1 : 1;
  return 0;
}

type OrderKey = Pick<OrderRow, 'saleId' | 'userId'>;

/**
 * Inserts a batch of orders in one statement and one round trip. The rows travel as one JSON parameter
 * (`json_to_recordset`), in the batch's order: one string to serialise, instead of three arrays that the
 * driver escapes element by element. ON CONFLICT DO NOTHING tells which rows are new; every other order of
 * the batch is a duplicate of one that exists. The new keys come back as one JSON text in one row, and each is
 * found among the orders given by a binary search of their key order: no string or map is made per order.
 * The statement commits on its own (autocommit): when it returns, the new orders are durable.
 */
export class OrderWriter {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * Proves that the database takes the order INSERT now, without writing a row: an INSERT of no rows still
   * needs a writable primary (a hot standby refuses it with 25006 where it answers `SELECT 1`), the table and
   * the INSERT privilege. The circuit breaker's probe and /ready.
   */
  async checkWritable(): Promise<void> {
    await this.insert([]);
  }

  /** `orders` must be in key order (`compareOrderKeys`) with each key once: the order their rows are locked in. */
  async insert(orders: readonly OrderRow[]): Promise<InsertedOrders> {
    for (let index = 1; index < orders.length; index++) {
      if (compareOrderKeys(orders[index - 1] as OrderRow, orders[index] as OrderRow) >= 0) {
        throw new Error(`orders to insert are not in key order with each key once (at row ${index})`);
      }
    }
    const rows = JSON.stringify(
      // The purchase time as epoch milliseconds: a Date's JSON form of a year past 9999 ("+010000-…", a valid
      // purchase made late on 9999-12-31 west of UTC) is not one PostgreSQL reads.
      orders.map((order) => ({ s: order.saleId, u: order.userId, t: order.timestamp.getTime() })),
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
    const isNew = new Array<boolean>(orders.length).fill(false);
    if (!result?.committed_at) return { isNew, committedAt: undefined };
    for (const [saleId, userId] of JSON.parse(result.keys) as [string, string][]) {
      const index = indexOfKey(orders, { saleId, userId });
      if (index < 0) {
        throw new Error(`the order INSERT returned a row it was not given (sale ${saleId}, user ${userId})`);
      }
      isNew[index] = true;
    }
    return { isNew, committedAt: result.committed_at };
  }
}

/** Where `key` is among `orders` (in key order), or -1. */
function indexOfKey(orders: readonly OrderRow[], key: OrderKey): number {
  let low = 0;
  let high = orders.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const order = compareOrderKeys(orders[middle] as OrderRow, key);
    if (order === 0) return middle;
    if (order < 0) low = middle + 1;
    else high = middle - 1;
  }
  return -1;
}
