/**
 * A property of the whole pipeline (broker, worker, database), checked on random batches of messages: random
 * bytes, random JSON, purchase-shaped objects with hostile strings in every field, over-size bodies and valid
 * purchases, several of them for the same (sale, user) so that duplicates occur, under random content types
 * and headers. Whatever arrives, each message ends as exactly one of: a new order, a duplicate of an order
 * that exists, or one dead letter; each has exactly one audit row that says which; and the worker goes on.
 *
 * The oracle is `decodePurchase`, the worker's own validation (it has its own table-driven tests): this
 * property checks the bookkeeping from queue to tables, not the validation rules.
 *
 * Replay a failure with FC_SEED (and FC_PATH) from the report; FC_RUNS changes the number of batches.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { GetMessage, Options } from 'amqplib';
import fc from 'fast-check';
import { randomBytes, randomUUID } from 'node:crypto';
import { orderKey } from './support/order-key.js';
import { decodePurchase, type DecodeResult } from '@flashsale/contract';
import type { TestWorker } from './support/test-worker.js';
import { waitFor } from './support/harness.js';
import { TestWorld } from './support/test-worker.js';

const MAX_MESSAGE_BYTES = 32 * 1024;
const RUNS = Number(process.env.FC_RUNS ?? 8);
const SEED = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const PATH = process.env.FC_PATH;
/** Longest a batch may take to settle before the checks run anyway and say what is missing. */
const SETTLE_TIMEOUT_MS = 8_000;
/** Past this, fast-check stops (shrinking included) and reports what it has. */
const PROPERTY_TIME_LIMIT_MS = 60_000;
/** Placeholders for the saleId of the current run, lower and upper case (a fresh sale per run). */
const SALE = '<sale>';
const SALE_UPPER = '<SALE>';

type JsonValue = fc.JsonValue;

/** A message body, described so that a counterexample reads well; `materialise` turns it into bytes. */
type BodySpec =
  /** JSON of an object with these fields (undefined: absent) after the `extra` ones. */
  | {
      purchase: { saleId?: JsonValue; userId?: JsonValue; timestamp?: JsonValue };
      extra?: Record<string, JsonValue>;
    }
  | { json: JsonValue }
  /** A string as UTF-8 (a lone surrogate becomes U+FFFD). */
  | { text: string }
  | { bytes: Uint8Array }
  /** A valid purchase's JSON with `bytes` inserted at `at` (a fraction of its length). */
  | { spliced: Uint8Array; at: number; userId: string }
  /** A valid purchase padded with an extra field to `padded` bytes (around MAX_MESSAGE_BYTES). */
  | { padded: number; userId: string };

interface MessageSpec {
  body: BodySpec;
  /** The AMQP content-type property; undefined: absent. */
  contentType: string | undefined;
  headers: Record<string, string> | undefined;
}

/** Printable ASCII only: every other character as a \u escape (NUL, RTL overrides, lone surrogates, emoji). */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, (char) => {
    const codePoint = char.codePointAt(0) ?? 0;
    return codePoint > 0xffff
      ? `\\u{${codePoint.toString(16)}}`
      : `\\u${codePoint.toString(16).padStart(4, '0')}`;
  });
}

function capped(text: string, max: number): string {
  if (text.length <= max) return text;
  const half = Math.floor(max / 2);
  return `${text.slice(0, half)} …(${text.length - max} characters left out)… ${text.slice(-half)}`;
}

/** One generated batch; fast-check prints a counterexample with this, escaped and bounded. */
class Batch {
  constructor(readonly messages: MessageSpec[]) {}

  [fc.toStringMethod](): string {
    return capped(printable(fc.stringify(this.messages)), 20_000);
  }
}

// ---------------------------------------------------------------------------------------------- generators

/**
 * One character of a hostile string. fast-check's `unit: 'binary'` never yields a lone surrogate (it draws
 * whole code points), so those are drawn here, beside NUL, controls and the bidi overrides.
 */
const hostileChar = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '\u0000',
      '\u202E',
      '\u2066',
      '\u200F',
      '\u001b',
      '\r',
      '\n',
      '\u007f',
      '\u0085',
      '\uFEFF',
      '\uFFFE',
      '\uFFFD',
      '"',
      '\\',
      "'",
      '\u{1F6D2}',
    ),
  },
);
const hostileString = fc.string({ unit: hostileChar, maxLength: 40 });
const longHostileString = fc.string({ unit: hostileChar, minLength: 256, maxLength: 2000, size: 'max' });
const shortJson = fc.jsonValue({ maxDepth: 2 });

/** Valid userIds, few enough that purchases share (sale, user) keys and so make duplicates. */
const USERS = [
  'alice',
  'Alice',
  ' alice',
  'bob-42',
  '\u202Eمستخدم-٤٢',
  '🛒👩🏽‍💻',
  "'); DROP TABLE orders;--",
  'a\nb\r\u001b[0m',
  'u'.repeat(255),
];
const userId = fc.constantFrom(...USERS);

const YEAR_ONE = new Date('0001-01-01T00:00:00.000Z');
const YEAR_9999 = new Date('9999-12-31T23:59:59.999Z');

/** `date` written in local time at `offsetMinutes` from UTC, e.g. 2026-11-22T12:30:00.000+02:30. */
function withOffset(date: Date, offsetMinutes: number): string {
  const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString();
  const sign = offsetMinutes < 0 ? '-' : '+';
  const hours = String(Math.floor(Math.abs(offsetMinutes) / 60)).padStart(2, '0');
  const minutes = String(Math.abs(offsetMinutes) % 60).padStart(2, '0');
  return `${local.slice(0, -1)}${sign}${hours}:${minutes}`;
}

/** Mostly valid purchase times, with the edges: years 0001 and 9999, offsets, odd spellings. */
const timestamp = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .date({
        min: new Date('2000-01-01T00:00:00Z'),
        max: new Date('2100-01-01T00:00:00Z'),
        noInvalidDate: true,
      })
      .map((date) => date.toISOString()),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.date({ min: YEAR_ONE, max: YEAR_9999, noInvalidDate: true }),
        fc.integer({ min: -18 * 60, max: 18 * 60 }),
      )
      .map(([date, offset]) => withOffset(date, offset)),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '2026-11-22T10:00Z',
      '2026-11-22t10:00:00.123456789z',
      '2026-11-22T10:00:00+0530',
      '2024-02-29T12:00:00Z',
      '0001-01-01T00:00:00Z',
      '0001-01-01T00:30:00+01:00',
      '9999-12-31T23:59:59.999Z',
      '9999-12-31T23:59:59.999-01:00',
    ),
  },
);

const validPurchase: fc.Arbitrary<BodySpec> = fc.record({
  purchase: fc.record({ saleId: fc.constantFrom(SALE, SALE_UPPER), userId, timestamp }),
});

/** A field's value: one of `choices` by weight, else JSON of some other type, or the field left out. */
function fieldValue(
  ...choices: fc.WeightedArbitrary<JsonValue | undefined>[]
): fc.Arbitrary<JsonValue | undefined> {
  return fc.oneof(
    ...choices,
    { weight: 1, arbitrary: shortJson },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

/** A purchase-shaped object with each field valid, absent, hostile, very long, or not a string. */
const hostilePurchase: fc.Arbitrary<BodySpec> = fc.record(
  {
    purchase: fc.record({
      saleId: fieldValue(
        { weight: 4, arbitrary: fc.constantFrom(SALE, SALE_UPPER) },
        { weight: 2, arbitrary: hostileString },
        { weight: 1, arbitrary: fc.uuid().map((uuid) => `${uuid}\u0000`) },
        { weight: 1, arbitrary: fc.uuid().map((uuid) => ` ${uuid}`) },
      ),
      userId: fieldValue(
        { weight: 3, arbitrary: userId },
        { weight: 3, arbitrary: hostileString },
        { weight: 1, arbitrary: longHostileString },
        { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(256), '🛒'.repeat(256), '🛒'.repeat(255)) },
      ),
      timestamp: fieldValue({ weight: 4, arbitrary: timestamp }, { weight: 2, arbitrary: hostileString }),
    }),
    extra: fc.dictionary(hostileString, shortJson, { maxKeys: 3 }),
  },
  { requiredKeys: ['purchase'] },
);

const body: fc.Arbitrary<BodySpec> = fc.oneof(
  { weight: 6, arbitrary: validPurchase },
  { weight: 6, arbitrary: hostilePurchase },
  { weight: 2, arbitrary: fc.record({ json: fc.jsonValue({ maxDepth: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ text: fc.json({ maxDepth: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ text: fc.oneof(hostileString, longHostileString) }) },
  { weight: 2, arbitrary: fc.record({ bytes: fc.uint8Array({ maxLength: 2000 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      spliced: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      userId,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      padded: fc.oneof(
        fc.integer({ min: MAX_MESSAGE_BYTES - 2, max: MAX_MESSAGE_BYTES + 2 }),
        fc.integer({ min: MAX_MESSAGE_BYTES - 2000, max: MAX_MESSAGE_BYTES + 2000 }),
      ),
      userId,
    }),
  },
);

const contentType: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  { weight: 4, arbitrary: fc.constant(undefined) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'Application/JSON',
      'application/vnd.flashsale+json',
      '',
      'text/plain',
      'application/xml',
      'application/json\u0000',
      'text/plain\u0000; x=\uFFFE',
      'application/json\u202E',
      'application/json; q=\uD800',
    ),
  },
  { weight: 1, arbitrary: hostileString },
);

/** Headers a foreign publisher might set, some with the names the worker writes or reads. */
const headers: fc.Arbitrary<Record<string, string> | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  {
    weight: 1,
    arbitrary: fc.dictionary(
      fc.oneof(
        fc.string({ unit: hostileChar, minLength: 1, maxLength: 20 }),
        fc.constantFrom('x-rejection-code', 'x-original-queue', 'x-first-seen', 'x-retry-count'),
      ),
      fc.string({ unit: hostileChar, maxLength: 100 }),
      { minKeys: 1, maxKeys: 3 },
    ),
  },
);

const message: fc.Arbitrary<MessageSpec> = fc.record({ body, contentType, headers });
const batch = fc
  .array(message, { minLength: 1, maxLength: 100, size: 'max' })
  .map((messages) => new Batch(messages));

// --------------------------------------------------------------------------------------------- the run

/** One message as published, and what the oracle says of it. */
interface Sent {
  index: number;
  messageId: string;
  spec: MessageSpec;
  content: Buffer;
  verdict: DecodeResult;
}

interface AuditRow {
  event: string;
  sale_id: string | null;
  user_id: string | null;
  details: Record<string, unknown>;
}

interface OrderRow {
  sale_id: string;
  user_id: string;
  purchased_at: Date;
}

const validBody = (saleId: string, user: string, extra: Record<string, string> = {}) =>
  JSON.stringify({ saleId, userId: user, timestamp: '2026-11-22T10:00:00.000Z', ...extra });

/** The bytes of a body for the run's sale. */
function materialise(spec: BodySpec, saleId: string): Buffer {
  if ('purchase' in spec) {
    const { saleId: sale, userId: user, timestamp: time } = spec.purchase;
    const resolved = sale === SALE ? saleId : sale === SALE_UPPER ? saleId.toUpperCase() : sale;
    return Buffer.from(JSON.stringify({ ...spec.extra, saleId: resolved, userId: user, timestamp: time }));
  }
  if ('json' in spec) return Buffer.from(JSON.stringify(spec.json));
  if ('text' in spec) return Buffer.from(spec.text, 'utf8');
  if ('bytes' in spec) return Buffer.from(spec.bytes);
  if ('spliced' in spec) {
    const text = Buffer.from(validBody(saleId, spec.userId));
    const at = Math.floor(spec.at * text.length);
    return Buffer.concat([text.subarray(0, at), Buffer.from(spec.spliced), text.subarray(at)]);
  }
  const unpadded = Buffer.byteLength(validBody(saleId, spec.userId, { pad: '' }));
  return Buffer.from(
    validBody(saleId, spec.userId, { pad: 'x'.repeat(Math.max(0, spec.padded - unpadded)) }),
  );
}

/** The content type as the worker receives it: amqplib sends a lone surrogate as U+FFFD. */
function asReceived(value: string | undefined): string | undefined {
  return value === undefined ? undefined : Buffer.from(value, 'utf8').toString('utf8');
}

function describeVerdict(verdict: DecodeResult): string {
  return verdict.ok ? 'valid' : `invalid (${verdict.rejection.code})`;
}

describe('the purchase pipeline fed random bytes, random JSON and hostile purchases', () => {
  let world: TestWorld;
  let worker: TestWorker;
  /** Dead letters taken off the DLQ, by message id, over all runs (a run takes only its own). */
  const deadLetters = new Map<string, GetMessage[]>();

  beforeAll(async () => {
    world = await TestWorld.create('pipeline_property');
    worker = await world.startWorker({
      MAX_MESSAGE_BYTES,
      AUDIT_FLUSH_INTERVAL_MS: 20,
      BATCH_WAIT_MS: 5,
      LOG_LEVEL: 'error',
    });
  });
  afterAll(() => world.close());

  async function publish(sent: Sent[]): Promise<void> {
    const channel = await world.publisher();
    for (const { messageId, content, spec } of sent) {
      const options: Options.Publish = { persistent: true, messageId };
      if (spec.contentType !== undefined) options.contentType = spec.contentType;
      if (spec.headers !== undefined) options.headers = spec.headers;
      channel.sendToQueue(world.queue, content, options);
    }
    await channel.waitForConfirms();
  }

  async function auditRowsOf(messageIds: string[]): Promise<AuditRow[]> {
    const { rows } = await world.sql.query<AuditRow>(
      `SELECT event, sale_id::text AS sale_id, user_id, details FROM audit_logs
        WHERE details->>'messageId' = ANY($1::text[])`,
      [messageIds],
    );
    return rows;
  }

  async function ordersOf(saleIds: string[]): Promise<OrderRow[]> {
    const { rows } = await world.sql.query<OrderRow>(
      'SELECT sale_id::text AS sale_id, user_id, purchased_at FROM orders WHERE sale_id = ANY($1::uuid[])',
      [saleIds],
    );
    return rows;
  }

  async function collectDeadLetters(): Promise<void> {
    for (const copy of await world.drainDeadLetters()) {
      const id = String(copy.properties.messageId);
      deadLetters.set(id, [...(deadLetters.get(id) ?? []), copy]);
    }
  }

  /**
   * Waits until every message has an audit row and nothing is queued, held or buffered; false when that
   * does not happen in time (the checks then say which messages are missing).
   */
  async function settled(messageIds: string[]): Promise<boolean> {
    try {
      await waitFor(
        'every message of the batch to be settled and audited',
        async () =>
          worker.worker.inFlight === 0 &&
          worker.audit.bufferedEvents === 0 &&
          (await world.queueDepth()) === 0 &&
          new Set((await auditRowsOf(messageIds)).map((row) => row.details.messageId)).size ===
            messageIds.length,
        { timeoutMs: SETTLE_TIMEOUT_MS, intervalMs: 50 },
      );
      return true;
    } catch {
      return false;
    }
  }

  /** Publishes the batch for a fresh sale, waits, and returns every broken promise of the property. */
  async function runBatch({ messages }: Batch): Promise<string[]> {
    const saleId = randomUUID();
    const runTag = randomBytes(4).toString('hex');
    const sent: Sent[] = messages.map((spec, index) => {
      const content = materialise(spec.body, saleId);
      return {
        index,
        messageId: `pp-${runTag}-${index}`,
        spec,
        content,
        verdict: decodePurchase(content, {
          contentType: asReceived(spec.contentType),
          maxBytes: MAX_MESSAGE_BYTES,
        }),
      };
    });
    const problems: string[] = [];
    const problem = (message: Sent, what: string) =>
      problems.push(
        `#${message.index} (${describeVerdict(message.verdict)}, ${message.content.length} bytes): ${what}; ` +
          `message: ${capped(printable(fc.stringify(message.spec)), 300)}`,
      );

    // The keys of the valid messages, and which of them already have an order (none, with a fresh sale).
    const valid = sent.filter((message) => message.verdict.ok);
    const keyOf = (message: Sent) => (message.verdict.ok ? orderKey(message.verdict.purchase) : '');
    const saleIds = [
      ...new Set(valid.map((message) => (message.verdict.ok ? message.verdict.purchase.saleId : ''))),
    ];
    const existing = new Set(
      (await ordersOf(saleIds)).map((row) => orderKey({ saleId: row.sale_id, userId: row.user_id })),
    );

    await publish(sent);
    const messageIds = sent.map((message) => message.messageId);
    const inTime = await settled(messageIds);
    await collectDeadLetters();

    const audits = new Map<string, AuditRow[]>();
    for (const row of await auditRowsOf(messageIds)) {
      const id = String(row.details.messageId);
      audits.set(id, [...(audits.get(id) ?? []), row]);
    }
    const orders = new Map(
      (await ordersOf([...new Set([saleId, ...saleIds])])).map((row) => [
        orderKey({ saleId: row.sale_id, userId: row.user_id }),
        row,
      ]),
    );
    const confirmations = new Map<string, number>();

    for (const message of sent) {
      const rows = audits.get(message.messageId) ?? [];
      const copies = deadLetters.get(message.messageId) ?? [];
      if (rows.length !== 1) {
        problem(
          message,
          `${rows.length} audit rows (${rows.map((row) => row.event).join(', ')}), expected 1`,
        );
        continue;
      }
      const [audit] = rows as [AuditRow];
      if (!message.verdict.ok) {
        if (audit.event !== 'MESSAGE_REJECTED')
          problem(message, `audited as ${audit.event}, expected MESSAGE_REJECTED`);
        if (copies.length !== 1) {
          problem(message, `${copies.length} dead-letter copies, expected 1`);
          continue;
        }
        const [copy] = copies as [GetMessage];
        const code = copy.properties.headers?.['x-rejection-code'] as unknown;
        const reason = copy.properties.headers?.['x-rejection-reason'] as unknown;
        if (!copy.content.equals(message.content)) problem(message, 'the dead-letter copy has another body');
        if (typeof reason !== 'string' || audit.details.reason !== reason) {
          problem(message, 'the audit row and the dead letter give different reasons');
        }
        if (code !== message.verdict.rejection.code || audit.details.code !== code) {
          problem(
            message,
            `rejection code ${String(code)} in the dead letter, ${String(audit.details.code)} in the audit row, ` +
              `expected ${message.verdict.rejection.code}`,
          );
        }
        continue;
      }
      const { purchase } = message.verdict;
      const key = keyOf(message);
      if (copies.length > 0) problem(message, `a valid message has ${copies.length} dead-letter copies`);
      if (audit.event !== 'ORDER_CONFIRMED' && audit.event !== 'ORDER_DUPLICATE') {
        problem(
          message,
          `audited as ${audit.event} (${printable(String(audit.details.reason))}), expected an order`,
        );
        continue;
      }
      if (audit.sale_id !== purchase.saleId || audit.user_id !== purchase.userId) {
        problem(message, `audited for ${audit.sale_id}/${printable(String(audit.user_id))}`);
      }
      const order = orders.get(key);
      if (!order) {
        problem(message, `audited as ${audit.event} but no order exists for its (saleId, userId)`);
        continue;
      }
      if (audit.event === 'ORDER_CONFIRMED') {
        confirmations.set(key, (confirmations.get(key) ?? 0) + 1);
        if (order.purchased_at.getTime() !== purchase.timestamp.getTime()) {
          problem(
            message,
            `its order was bought at ${order.purchased_at.toISOString()}, expected ${purchase.timestamp.toISOString()}`,
          );
        }
      }
    }

    // Per key: one confirmation when the key is new, none when its order existed before; no other orders.
    const keys = new Map(valid.map((message) => [keyOf(message), message]));
    for (const [key, first] of keys) {
      const expected = existing.has(key) ? 0 : 1;
      const confirmed = confirmations.get(key) ?? 0;
      if (confirmed !== expected)
        problem(first, `its key was confirmed ${confirmed} times, expected ${expected}`);
    }
    for (const order of orders.values()) {
      const key = orderKey({ saleId: order.sale_id, userId: order.user_id });
      if (!keys.has(key) && !existing.has(key)) {
        problems.push(`an order for user ${printable(order.user_id)} that no valid message asked for`);
      }
    }
    const newKeys = [...keys.keys()].filter((key) => !existing.has(key)).length;
    if (orders.size !== existing.size + newKeys) {
      problems.push(
        `${orders.size} orders for the batch's sales, expected ${existing.size + newKeys} (distinct valid keys)`,
      );
    }
    const invalid = sent.length - valid.length;
    const copies = sent.reduce((sum, message) => sum + (deadLetters.get(message.messageId)?.length ?? 0), 0);
    const rejectedRows = [...audits.values()].flat().filter((row) => row.event === 'MESSAGE_REJECTED').length;
    if (copies !== invalid || rejectedRows !== invalid) {
      problems.push(
        `${copies} dead letters and ${rejectedRows} MESSAGE_REJECTED rows, expected ${invalid} (invalid messages)`,
      );
    }
    const depth = await world.queueDepth();
    if (depth !== 0) problems.push(`${depth} messages left on the purchase queue`);
    if (worker.worker.state !== 'consuming') problems.push(`the worker is ${worker.worker.state}`);
    if (!inTime) problems.unshift(`not settled within ${SETTLE_TIMEOUT_MS} ms`);
    for (const id of messageIds) deadLetters.delete(id);
    return problems;
  }

  it('draws batches that hold new orders, duplicates and every kind of invalid message', () => {
    // Checked on a fixed sample, so that the property below cannot hold vacuously whatever its seed.
    const saleId = randomUUID();
    const outcomes = new Map<string, number>();
    const count = (outcome: string) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    for (const { messages } of fc.sample(batch, { numRuns: 20, seed: 20261127 })) {
      const keys = new Set<string>();
      for (const spec of messages) {
        const content = materialise(spec.body, saleId);
        const verdict = decodePurchase(content, {
          contentType: asReceived(spec.contentType),
          maxBytes: MAX_MESSAGE_BYTES,
        });
        if (!verdict.ok) count(verdict.rejection.code);
        else if (keys.has(orderKey(verdict.purchase))) count('duplicate');
        else count('new order');
        if (verdict.ok) keys.add(orderKey(verdict.purchase));
      }
    }
    const kinds = [
      'new order',
      'duplicate',
      'BODY_TOO_LARGE',
      'WRONG_CONTENT_TYPE',
      'INVALID_UTF8',
      'NOT_JSON',
      'NOT_AN_OBJECT',
      'INVALID_FIELDS',
    ];
    expect(kinds.filter((kind) => (outcomes.get(kind) ?? 0) < 3)).toEqual([]);
  });

  it(
    'settles every message as exactly one new order, duplicate of an existing order or dead letter, with one audit row saying which',
    async () => {
      await fc.assert(
        fc.asyncProperty(batch, async (generated) => {
          const problems = await runBatch(generated);
          if (problems.length > 0) {
            const shown = problems.slice(0, 12).map((text) => capped(text, 600));
            throw new Error(
              `${problems.length} broken promise(s):\n  ${shown.join('\n  ')}` +
                (problems.length > shown.length ? `\n  … and ${problems.length - shown.length} more` : ''),
            );
          }
        }),
        {
          numRuns: RUNS,
          ...(SEED === undefined ? {} : { seed: SEED }),
          ...(PATH === undefined ? {} : { path: PATH }),
          plugins: [fc.interruptAfterTimeLimit(PROPERTY_TIME_LIMIT_MS, { failOnInterrupt: true })],
        },
      );
    },
    PROPERTY_TIME_LIMIT_MS + 30_000,
  );

  it('keeps consuming after every batch and stores and audits the next valid purchase', async () => {
    expect(worker.worker.state).toBe('consuming');
    const saleId = randomUUID();
    const messageId = `pp-after-${randomBytes(4).toString('hex')}`;
    await world.publishRaw([validBody(saleId, 'after-everything')], { messageId });
    await waitFor('the order after every batch', async () => (await ordersOf([saleId])).length === 1);
    await waitFor('its audit row', async () => (await auditRowsOf([messageId])).length === 1);
    const [audit] = (await auditRowsOf([messageId])) as [AuditRow];
    expect(audit.event).toBe('ORDER_CONFIRMED');
    expect(audit.user_id).toBe('after-everything');
    expect(worker.worker.state).toBe('consuming');
  });
});
