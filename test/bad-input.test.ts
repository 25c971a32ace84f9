/**
 * The bad-input corpus against one running worker: every kind of body a publisher bug, an attacker or a
 * foreign system might send. Each invalid one must end up as exactly one dead letter that says what was wrong
 * and keeps the body byte for byte; each valid one as exactly one order with the userId as sent; and the
 * worker must go on consuming after all of it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { GetMessage } from 'amqplib';
import { randomUUID } from 'node:crypto';
import type { RejectionCode } from '@flashsale/contract';
import type { TestWorker } from './support/test-worker.js';
import { waitFor } from './support/harness.js';
import { TestWorld } from './support/test-worker.js';

const MAX_MESSAGE_BYTES = 32 * 1024;
const LEVELS = 10_000;
const SALE_ID = '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11';
const TIMESTAMP = '2026-11-22T10:00:00.000Z';
const TEXT_PLAIN = { contentType: 'text/plain' };
const NO_CONTENT_TYPE = { contentType: undefined };
const EMOJI = '\u{1F600}';
/** AMQP properties an attacker controls: a NUL in the content type, a message id, a 50 KB header (amqplib encodes at most 64 KB of headers). */
const NUL_CONTENT_TYPE = { contentType: 'text/plain\u0000; x=\uFFFE' };
const HOSTILE_PROPERTIES = {
  messageIdPrefix: 'id\u0000\u202E\u001b[31m-',
  correlationId: 'corr\u0000',
  headers: { 'x-note': 'n\u0000\uD800'.repeat(10_000), 'x-nul\u0000key': 'v' },
};

interface PublishOptions {
  contentType?: string;
  messageIdPrefix?: string;
  correlationId?: string;
  headers?: Record<string, unknown>;
}

type Fields = Record<string, unknown>;
const body = (fields: Fields) =>
  JSON.stringify({ saleId: SALE_ID, userId: 'user-42', timestamp: TIMESTAMP, ...fields });
const without = (field: string) => body({ [field]: undefined });
/** `fields` as JSON with the string value "@" replaced by raw JSON text. */
const withRaw = (fields: Fields, raw: string) => body(fields).replace('"@"', raw);
const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
/** A valid purchase padded with an extra field to exactly `bytes` bytes. */
const ofBytes = (bytes: number, saleId = SALE_ID) =>
  body({
    saleId,
    userId: 'padded',
    pad: 'x'.repeat(bytes - Buffer.byteLength(body({ saleId, userId: 'padded', pad: '' }))),
  });
const [beforeUserId, afterUserId] = body({ userId: '@' }).split('@') as [string, string];
const badUtf8 = Buffer.concat([
  Buffer.from(beforeUserId),
  Buffer.from([0xc3, 0x28, 0xa0, 0xff]),
  Buffer.from(afterUserId),
]);

// [kind, code, body, what a person reading x-rejection-reason must find in it, publish options]
// prettier-ignore
const invalid: [string, RejectionCode, string | Buffer, string, PublishOptions?][] = [
  ['not JSON', 'NOT_JSON', 'buy me a ticket', 'not JSON'],
  ['a JSON array', 'NOT_AN_OBJECT', `[${body({})}]`, 'body is an array, expected a JSON object'],
  ['JSON null', 'NOT_AN_OBJECT', 'null', 'body is null'],
  ['a JSON number', 'NOT_AN_OBJECT', '12345', 'body is a number'],
  ['a JSON string', 'NOT_AN_OBJECT', '"purchase"', 'body is a string'],
  ['a JSON boolean', 'NOT_AN_OBJECT', 'false', 'body is a boolean'],
  ['an empty body', 'NOT_JSON', '', 'body is empty'],
  ['a whitespace body', 'NOT_JSON', '  \r\n\t ', 'body is empty'],
  ['truncated JSON', 'NOT_JSON', body({}).slice(0, 40), 'not JSON'],
  ['a missing saleId', 'INVALID_FIELDS', without('saleId'), 'saleId is required'],
  ['a missing userId', 'INVALID_FIELDS', without('userId'), 'userId is required'],
  ['a missing timestamp', 'INVALID_FIELDS', without('timestamp'), 'timestamp is required'],
  ['a number userId', 'INVALID_FIELDS', body({ userId: 42 }), 'userId must be a string'],
  ['an object saleId', 'INVALID_FIELDS', body({ saleId: { id: SALE_ID } }), 'saleId must be a string'],
  ['an array timestamp', 'INVALID_FIELDS', body({ timestamp: [TIMESTAMP] }), 'timestamp must be a string'],
  ['a non-UUID saleId', 'INVALID_FIELDS', body({ saleId: 'black-friday' }), 'saleId must be a UUID'],
  ['an empty userId', 'INVALID_FIELDS', body({ userId: '' }), 'userId must not be empty'],
  ['a userId of 256 characters', 'INVALID_FIELDS', body({ userId: 'u'.repeat(256) }), 'userId must be at most 255 characters'],
  ['a timestamp that is not a date', 'INVALID_FIELDS', body({ timestamp: 'tomorrow at noon' }), 'timestamp must be an ISO 8601 date-time'],
  ['an impossible date (30 February)', 'INVALID_FIELDS', body({ timestamp: '2026-02-30T10:00:00.000Z' }), 'timestamp must be an ISO 8601 date-time'],
  ['a date-time without a zone', 'INVALID_FIELDS', body({ timestamp: '2026-11-22T10:00:00' }), 'with a zone'],
  ['a timestamp in the year 0000', 'INVALID_FIELDS', body({ timestamp: '0000-06-01T10:00:00Z' }), 'timestamp must not be before the year 0001'],
  ['a body over MAX_MESSAGE_BYTES', 'BODY_TOO_LARGE', ofBytes(MAX_MESSAGE_BYTES + 1), `body is ${MAX_MESSAGE_BYTES + 1} bytes, over the limit of ${MAX_MESSAGE_BYTES} bytes`],
  ['invalid UTF-8 bytes', 'INVALID_UTF8', badUtf8, 'body is not valid UTF-8'],
  [`JSON nested ${LEVELS} levels deep`, 'NOT_AN_OBJECT', nested(LEVELS), 'body is an array'],
  ['a saleId carried only by "__proto__"', 'INVALID_FIELDS', `{"__proto__":{"saleId":"${SALE_ID}"},"userId":"u","timestamp":"${TIMESTAMP}"}`, 'saleId is required'],
  ['a NUL character in userId', 'INVALID_FIELDS', body({ userId: 'user\u0000-42' }), 'userId must not contain a NUL character'],
  ['a lone surrogate in userId (no UTF-8 form)', 'INVALID_FIELDS', withRaw({ userId: '@' }, '"user-\\udc00"'), 'userId must be valid Unicode'],
  ['a text/plain content type', 'WRONG_CONTENT_TYPE', body({}), 'content type is "text/plain", expected application/json', TEXT_PLAIN],
  ['a NUL userId', 'INVALID_FIELDS', body({ userId: 'a\u0000b' }), 'userId must not contain a NUL character'],
  ['a userId of 300 emoji', 'INVALID_FIELDS', body({ userId: EMOJI.repeat(300) }), 'userId must be at most 255 characters'],
  ['a lone surrogate and NUL in userId', 'INVALID_FIELDS', withRaw({ userId: '@' }, '"\\ud800\\u0000"'), 'userId must not contain a NUL character'],
  ['a body starting with a NUL', 'NOT_JSON', `\u0000${body({})}`, 'body is not JSON'],
  ['a NUL in the content type', 'WRONG_CONTENT_TYPE', body({}), 'content type is "text/plain\uFFFD; x=\uFFFE"', NUL_CONTENT_TYPE],
  ['hostile message id, correlation id and headers', 'INVALID_FIELDS', body({ userId: 'evil\u202E\u001b[2J'.repeat(40) }), 'userId must be at most 255 characters', HOSTILE_PROPERTIES],
];

// [kind, userId as stored, body for a given saleId, publish options]; every one is bought at TIMESTAMP
// prettier-ignore
const valid: [string, string, (saleId: string) => string, PublishOptions?][] = [
  ['extra fields', 'extra', (saleId) => body({ saleId, userId: 'extra', quantity: 2, coupon: { code: 'X' } })],
  ['a userId of 255 characters', 'u'.repeat(255), (saleId) => body({ saleId, userId: 'u'.repeat(255) })],
  ['an extra "constructor" key', 'ctor', (saleId) => body({ saleId, userId: 'ctor', constructor: { prototype: { isAdmin: true } } })],
  ['a SQL-looking userId', "'); DROP TABLE orders;--", (saleId) => body({ saleId, userId: "'); DROP TABLE orders;--" })],
  ['a userId of PostgreSQL array-literal characters', '{"a,b"}\\ NULL', (saleId) => body({ saleId, userId: '{"a,b"}\\ NULL' })],
  ['the userId "NULL"', 'NULL', (saleId) => body({ saleId, userId: 'NULL' })],
  ['an emoji userId', '🛒👩🏽‍💻🎉', (saleId) => body({ saleId, userId: '🛒👩🏽‍💻🎉' })],
  ['a right-to-left userId', '\u202Eمستخدم-٤٢ עברית', (saleId) => body({ saleId, userId: '\u202Eمستخدم-٤٢ עברית' })],
  [`JSON nested ${LEVELS} levels deep in an extra field`, 'deep', (saleId) => withRaw({ saleId, userId: 'deep', extra: '@' }, nested(LEVELS))],
  ['a body of exactly MAX_MESSAGE_BYTES', 'padded', (saleId) => ofBytes(MAX_MESSAGE_BYTES, saleId)],
  ['no content type', 'untyped', (saleId) => body({ saleId, userId: 'untyped' }), NO_CONTENT_TYPE],
  ['an upper-case saleId', 'upper', (saleId) => body({ saleId: saleId.toUpperCase(), userId: 'upper' })],
  ['a timestamp with an offset', 'offset', (saleId) => body({ saleId, userId: 'offset', timestamp: '2026-11-22T12:30:00+02:30' })],
  ['a userId with line breaks and escapes', 'a\nb\r\u001b[0m', (saleId) => body({ saleId, userId: 'a\nb\r\u001b[0m' })],
  ['a userId of 255 emoji', EMOJI.repeat(255), (saleId) => body({ saleId, userId: EMOJI.repeat(255) })],
  ['hostile message properties', 'props', (saleId) => body({ saleId, userId: 'props' }), HOSTILE_PROPERTIES],
];

interface AuditRow {
  event: string;
  sale_id: string | null;
  user_id: string | null;
  details: Record<string, unknown>;
}

/** Publish options for one message of the corpus: its own message id, after any hostile prefix. */
function publishOptions(messageId: string, options: PublishOptions = {}) {
  const { messageIdPrefix, ...rest } = options;
  return { ...rest, messageId: `${messageIdPrefix ?? ''}${messageId}` };
}

// What no header, audit detail or log may carry: NUL, other controls, bidi overrides, lone surrogates.
const UNSAFE = /[\p{Cc}\u202A-\u202E\u2066-\u2069]|\p{Cs}/u;

/** Every key and string value in a JSON value. */
function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsOf);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => [key, ...stringsOf(item)]);
  }
  return [];
}

describe('a worker given bad input', () => {
  let world: TestWorld;
  let worker: TestWorker;

  beforeAll(async () => {
    world = await TestWorld.create('bad_input');
    worker = await world.startWorker({
      MAX_MESSAGE_BYTES,
      BATCH_WAIT_MS: 5,
      AUDIT_FLUSH_INTERVAL_MS: 20,
      LOG_LEVEL: 'error',
    });
  });
  afterAll(() => world.close());

  const ordersOfSale = (saleId: string) =>
    world.count('SELECT count(*) FROM orders WHERE sale_id = $1', [saleId]);

  /** The audit rows whose messageId ends with `messageId` (a hostile prefix is stored made safe). */
  async function auditRowsOf(messageId: string): Promise<AuditRow[]> {
    const { rows } = await world.sql.query<AuditRow>(
      `SELECT event, sale_id::text, user_id, details FROM audit_logs WHERE details->>'messageId' LIKE '%' || $1`,
      [messageId],
    );
    return rows;
  }

  /** Waits until the message's audit row is written and returns it, after checking it is the only one. */
  async function auditRowOf(messageId: string): Promise<AuditRow> {
    await waitFor(`the audit row of ${messageId}`, async () => (await auditRowsOf(messageId)).length > 0);
    const rows = await auditRowsOf(messageId);
    expect(rows).toHaveLength(1);
    return rows[0] as AuditRow;
  }

  /** Waits until the worker holds no message and the purchase queue is empty. */
  async function settled(): Promise<void> {
    await waitFor(
      'the worker to settle everything',
      async () => worker.worker.inFlight === 0 && (await world.queueDepth()) === 0,
    );
  }

  describe('dead-letters', () => {
    // Rows as objects: a callback with more parameters than a tuple row has would be taken for `done`.
    const rows = invalid.map(([kind, code, body, reason, options]) => ({
      kind,
      code,
      body,
      reason,
      options,
    }));
    it.each(rows)(
      '$kind, as $code with a reason and the body byte for byte',
      async ({ kind, code, body, reason, options }) => {
        const messageId = randomUUID();
        const published = publishOptions(messageId, options);
        const ordersBefore = await world.orders();
        const content = Buffer.isBuffer(body) ? body : Buffer.from(body);
        await world.publishRaw([content], published);

        const deadLetters: GetMessage[] = [];
        await waitFor(`the dead letter of ${kind}`, async () => {
          deadLetters.push(...(await world.drainDeadLetters()));
          return deadLetters.some((message) => message.properties.messageId === published.messageId);
        });
        await settled();
        deadLetters.push(...(await world.drainDeadLetters()));

        // The DLQ copy: the body and the properties as received, byte for byte, with a safe reason.
        expect(deadLetters.map((message) => String(message.properties.messageId))).toEqual([
          published.messageId,
        ]);
        const [deadLetter] = deadLetters as [GetMessage];
        expect(deadLetter.content.equals(content)).toBe(true);
        expect(deadLetter.properties.contentType).toBe(published.contentType ?? 'application/json');
        expect(deadLetter.properties.correlationId).toBe(published.correlationId);
        for (const [key, value] of Object.entries(published.headers ?? {})) {
          // As sent on the wire: a lone surrogate has no UTF-8 form, the publisher sent U+FFFD for it.
          const sent = typeof value === 'string' ? Buffer.from(value).toString() : value;
          expect({ key, same: deadLetter.properties.headers?.[key] === sent }).toEqual({ key, same: true });
        }
        const headers = deadLetter.properties.headers ?? {};
        expect(headers['x-rejection-code']).toBe(code);
        const headerReason = String(headers['x-rejection-reason']);
        expect(headerReason).toContain(reason);
        expect(headerReason).not.toMatch(UNSAFE);
        expect(headers['x-original-queue']).toBe(world.queue);
        expect(await world.orders()).toBe(ordersBefore);

        // The audit row: one MESSAGE_REJECTED with the same code and reason, every string in it storable.
        const audit = await auditRowOf(messageId);
        expect(audit.event).toBe('MESSAGE_REJECTED');
        expect(audit.sale_id).toBeNull();
        expect(audit.details.code).toBe(code);
        expect(audit.details.reason).toBe(headerReason);
        for (const text of stringsOf(audit.details)) expect(text).not.toMatch(UNSAFE);
        expect(audit.details.reason).not.toBe('unstorable details');
      },
    );
  });

  describe('stores', () => {
    const rows = valid.map(([kind, userId, bodyFor, options]) => ({ kind, userId, bodyFor, options }));
    it.each(rows)(
      '$kind as one order with the userId byte for byte',
      async ({ kind, userId, bodyFor, options }) => {
        const saleId = randomUUID();
        const messageId = randomUUID();
        await world.publishRaw([bodyFor(saleId)], publishOptions(messageId, options));

        await waitFor(`the order of ${kind}`, async () => (await ordersOfSale(saleId)) > 0);
        await settled();

        const { rows } = await world.sql.query<{
          user_id: string;
          bytes: Buffer;
          purchased_at: Date;
          status: string;
        }>(
          `SELECT user_id, convert_to(user_id, 'UTF8') AS bytes, purchased_at, status FROM orders WHERE sale_id = $1`,
          [saleId],
        );
        expect(rows).toHaveLength(1);
        const [order] = rows as [(typeof rows)[number]];
        expect(order.user_id).toBe(userId);
        expect(order.bytes.equals(Buffer.from(userId, 'utf8'))).toBe(true);
        expect(order.purchased_at.toISOString()).toBe(TIMESTAMP);
        expect(order.status).toBe('CONFIRMED');
        expect(await world.drainDeadLetters()).toHaveLength(0);

        const audit = await auditRowOf(messageId);
        expect(audit.event).toBe('ORDER_CONFIRMED');
        expect(audit.sale_id).toBe(saleId);
        expect(audit.user_id).toBe(userId);
      },
    );
  });

  it('stores a purchase made late on 9999-12-31 west of UTC (year 10000 in UTC) at its exact time', async () => {
    const saleId = randomUUID();
    await world.publishRaw([
      body({ saleId, userId: 'last-minute', timestamp: '9999-12-31T23:59:59.999-01:00' }),
    ]);
    await waitFor('the order', async () => (await ordersOfSale(saleId)) === 1);
    const { rows } = await world.sql.query<{ at: string }>(
      `SELECT to_char(purchased_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') AS at FROM orders WHERE sale_id = $1`,
      [saleId],
    );
    expect(rows[0]?.at).toBe('10000-01-01 00:59:59.999');
    expect(await world.drainDeadLetters()).toHaveLength(0);
  });

  describe('after the whole corpus', () => {
    it('is still consuming, and stores and audits the next valid purchases', async () => {
      expect(worker.worker.state).toBe('consuming');
      const saleId = randomUUID();
      const users = ['after-1', 'after-2', 'after-3', 'after-4', 'after-5'];
      await world.publishRaw(users.map((userId) => body({ saleId, userId })));
      await waitFor('the orders after the corpus', async () => (await ordersOfSale(saleId)) === 5);
      await waitFor(
        'their audit rows',
        async () => (await world.count('SELECT count(*) FROM audit_logs WHERE sale_id = $1', [saleId])) === 5,
      );
      // The rows are visible once PostgreSQL commits them, a moment before the worker reads the reply and
      // lets go of them: the buffer is empty soon after, never before.
      await waitFor('the audit buffer to empty', () => worker.audit.bufferedEvents === 0);
    });
  });
});
