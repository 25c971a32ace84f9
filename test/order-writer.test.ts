/** The order INSERT against the real database: which rows it reports new, for every kind of userId. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { parseSettings } from '../src/config/settings.js';
import {
  classifyDatabaseError,
  databaseErrorCode,
  databaseErrorMessage,
} from '../src/database/database-errors.js';
import { compareOrderKeys, OrderWriter, type OrderRow } from '../src/database/order.writer.js';
import { PrismaService } from '../src/database/prisma.service.js';
import { createTestDatabase, type TestDatabase } from './support/harness.js';

describe('OrderWriter on PostgreSQL', () => {
  let db: TestDatabase;
  let prisma: PrismaService;
  let sql: pg.Pool;
  let writer: OrderWriter;

  beforeAll(async () => {
    db = await createTestDatabase('order_writer');
    prisma = new PrismaService(parseSettings({ DATABASE_URL: db.url, WORKER_ID: 'order-writer-test' }));
    sql = new pg.Pool({ connectionString: db.url, max: 1 });
    writer = new OrderWriter(prisma);
  });
  afterAll(async () => {
    await prisma.$disconnect();
    await sql.end();
    await db.drop();
  });

  const SALE = '0b6f4a52-94e4-4d6e-8a53-2f0a1e9d7c10';
  const OTHER_SALE = '0b6f4a52-94e4-4d6e-8a53-2f0a1e9d7c11';
  const order = (userId: string, saleId = SALE): OrderRow => ({
    saleId,
    userId,
    timestamp: new Date('2026-11-27T10:00:00.123Z'),
  });

  const inKeyOrder = (orders: OrderRow[]) => orders.sort(compareOrderKeys);

  it('tells, row by row in the order given, which orders are new and which existed', async () => {
    const first = await writer.insert([order('a'), order('b'), order('c')]);
    expect(first.isNew).toEqual([true, true, true]);
    expect(first.committedAt).toBeInstanceOf(Date);

    const second = await writer.insert([order('a'), order('b'), order('d'), order('b', OTHER_SALE)]);
    expect(second.isNew).toEqual([false, false, true, true]);

    const rows = await sql.query<{ users: string }>(
      "SELECT string_agg(sale_id::text || '/' || user_id, ',' ORDER BY sale_id, user_id) AS users FROM orders",
    );
    expect(rows.rows[0]?.users).toBe(
      [...['a', 'b', 'c', 'd'].map((user) => `${SALE}/${user}`), `${OTHER_SALE}/b`].join(','),
    );
  });

  it('matches userIds that JSON escapes or that are long, and tells none new when all existed', async () => {
    const awkward = [
      'quote " here',
      'back\\slash',
      'tab\there',
      '😀 emoji',
      'é'.repeat(255),
      'line\nbreak',
      '\uffff',
    ];
    const first = await writer.insert(inKeyOrder(awkward.map((userId) => order(userId))));
    expect(first.isNew).toEqual(awkward.map(() => true));
    const mixed = inKeyOrder([...awkward, 'new one'].map((userId) => order(userId)));
    const again = await writer.insert(mixed);
    expect(again.isNew).toEqual(mixed.map(({ userId }) => userId === 'new one'));
    const none = await writer.insert(inKeyOrder(awkward.map((userId) => order(userId))));
    expect(none.isNew).toEqual(awkward.map(() => false));
    expect(none.committedAt).toBeUndefined();
  });

  it('refuses orders out of key order or with a key twice, before the database sees them', async () => {
    await expect(writer.insert([order('n'), order('m')])).rejects.toThrow('not in key order');
    await expect(writer.insert([order('m'), order('m')])).rejects.toThrow('not in key order');
    const rows = await sql.query("SELECT 1 FROM orders WHERE user_id IN ('m', 'n')");
    expect(rows.rowCount).toBe(0);
  });

  it('fails, rather than tell a new order a duplicate, when a key reads back otherwise than it was sent', async () => {
    // PostgreSQL returns a UUID in lower case; the worker always sends it so (the schema lower-cases it).
    await expect(writer.insert([order('upper', SALE.toUpperCase())])).rejects.toThrow(
      `returned a row it was not given (sale ${SALE}, user upper)`,
    );
  });

  it('answers an empty batch with no rows, and fails a refused row with its SQLSTATE', async () => {
    expect(await writer.insert([])).toEqual({ isNew: [], committedAt: undefined });
    await expect(writer.insert([order('x', 'not-a-uuid')])).rejects.toMatchObject({
      message: expect.stringContaining('22P02'),
    });
  });

  it("keeps the database's code and words in a refused batch's error (the client captures no call site)", async () => {
    const refused = await writer.insert([order('x', 'not-a-uuid')]).catch((error: unknown) => error);
    expect(classifyDatabaseError(refused)).toBe('poison');
    expect(databaseErrorCode(refused)).toBe('22P02');
    expect(databaseErrorMessage(refused)).toMatch(/invalid input syntax for type uuid: "not-a-uuid"/);
  });
});
