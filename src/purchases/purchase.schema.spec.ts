import { describe, expect, it } from '@jest/globals';
import { parsePurchase, type RejectionCode } from './purchase.schema.js';

const MAX_BYTES = 2048;
const SALE_ID = '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11';
const TIMESTAMP = '2026-11-22T10:00:00.000Z';

const json = (fields: Record<string, unknown>) => JSON.stringify(fields);
const withFields = (fields: Record<string, unknown>) =>
  json({ saleId: SALE_ID, userId: 'user-42', timestamp: TIMESTAMP, ...fields });
const without = (field: string) => {
  const fields: Record<string, unknown> = { saleId: SALE_ID, userId: 'user-42', timestamp: TIMESTAMP };
  delete fields[field];
  return json(fields);
};

/** Pads a valid body with an extra field until it is exactly `bytes` long. */
function bodyOfBytes(bytes: number): string {
  const base = withFields({ padding: '' });
  return withFields({ padding: 'x'.repeat(bytes - Buffer.byteLength(base)) });
}

interface AcceptedCase {
  name: string;
  body: string | Buffer;
  contentType?: string;
  expected: { saleId?: string; userId?: string; timestamp?: string };
}

const accepted: AcceptedCase[] = [
  {
    name: 'the contract example',
    body: withFields({}),
    expected: { saleId: SALE_ID, userId: 'user-42', timestamp: TIMESTAMP },
  },
  {
    name: 'an upper-case saleId, lower-cased',
    body: withFields({ saleId: SALE_ID.toUpperCase() }),
    expected: { saleId: SALE_ID },
  },
  {
    name: 'unknown extra fields',
    body: withFields({ quantity: 3, nested: { a: [1, 2] } }),
    expected: { userId: 'user-42' },
  },
  {
    name: 'an extra "constructor" key',
    body: withFields({ constructor: { prototype: { admin: true } } }),
    expected: { userId: 'user-42' },
  },
  { name: 'a userId of one character', body: withFields({ userId: 'u' }), expected: { userId: 'u' } },
  {
    name: 'a userId of 255 characters',
    body: withFields({ userId: 'u'.repeat(255) }),
    expected: { userId: 'u'.repeat(255) },
  },
  {
    name: 'a userId of 255 emoji (characters, not UTF-16 units, are counted)',
    body: withFields({ userId: '😀'.repeat(255) }),
    expected: { userId: '😀'.repeat(255) },
  },
  {
    name: 'a SQL-looking userId, verbatim',
    body: withFields({ userId: "'); DROP TABLE orders;--" }),
    expected: { userId: "'); DROP TABLE orders;--" },
  },
  {
    name: 'a right-to-left userId, verbatim',
    body: withFields({ userId: 'مستخدم\u200f-٤٢' }),
    expected: { userId: 'مستخدم\u200f-٤٢' },
  },
  {
    name: 'a userId with surrounding spaces, verbatim',
    body: withFields({ userId: '  user 42  ' }),
    expected: { userId: '  user 42  ' },
  },
  {
    name: 'a timestamp with a numeric offset',
    body: withFields({ timestamp: '2026-11-22T12:00:00+02:00' }),
    expected: { timestamp: TIMESTAMP },
  },
  {
    name: 'a timestamp with a compact offset',
    body: withFields({ timestamp: '2026-11-22T05:00:00-0500' }),
    expected: { timestamp: TIMESTAMP },
  },
  {
    name: 'a timestamp without fractional seconds',
    body: withFields({ timestamp: '2026-11-22T10:00:00Z' }),
    expected: { timestamp: TIMESTAMP },
  },
  {
    name: 'a timestamp with microseconds',
    body: withFields({ timestamp: '2026-11-22T10:00:00.000123Z' }),
    expected: { timestamp: TIMESTAMP },
  },
  {
    name: 'a timestamp on a leap day',
    body: withFields({ timestamp: '2028-02-29T10:00:00Z' }),
    expected: { timestamp: '2028-02-29T10:00:00.000Z' },
  },
  { name: 'no content type', body: withFields({}), contentType: undefined, expected: { userId: 'user-42' } },
  { name: 'an empty content type', body: withFields({}), contentType: '', expected: { userId: 'user-42' } },
  {
    name: 'application/json with a charset',
    body: withFields({}),
    contentType: 'application/json; charset=utf-8',
    expected: { userId: 'user-42' },
  },
  {
    name: 'a +json content type',
    body: withFields({}),
    contentType: 'application/vnd.flashsale+json',
    expected: { userId: 'user-42' },
  },
  { name: 'a body of exactly the size limit', body: bodyOfBytes(MAX_BYTES), expected: { userId: 'user-42' } },
  {
    name: 'JSON surrounded by whitespace',
    body: `\n  ${withFields({})}  \n`,
    expected: { userId: 'user-42' },
  },
];

interface RejectedCase {
  name: string;
  body: string | Buffer;
  contentType?: string;
  code: RejectionCode;
  /** Words the reason must contain: together they name the problem. */
  reasonMentions: string[];
}

const rejected: RejectedCase[] = [
  {
    name: 'a body one byte over the limit',
    body: bodyOfBytes(MAX_BYTES + 1),
    code: 'BODY_TOO_LARGE',
    reasonMentions: ['2049 bytes', 'limit of 2048 bytes'],
  },
  {
    name: 'a text/plain content type',
    body: withFields({}),
    contentType: 'text/plain',
    code: 'WRONG_CONTENT_TYPE',
    reasonMentions: ['"text/plain"', 'application/json'],
  },
  {
    name: 'an XML content type',
    body: '<purchase/>',
    contentType: 'application/xml',
    code: 'WRONG_CONTENT_TYPE',
    reasonMentions: ['application/xml'],
  },
  {
    name: 'invalid UTF-8 bytes',
    body: Buffer.concat([Buffer.from('{"saleId":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]),
    code: 'INVALID_UTF8',
    reasonMentions: ['not valid UTF-8'],
  },
  { name: 'an empty body', body: '', code: 'NOT_JSON', reasonMentions: ['empty'] },
  { name: 'a whitespace body', body: ' \n\t ', code: 'NOT_JSON', reasonMentions: ['empty'] },
  { name: 'plain text', body: 'buy now', code: 'NOT_JSON', reasonMentions: ['not JSON'] },
  {
    name: 'truncated JSON',
    body: withFields({}).slice(0, 30),
    code: 'NOT_JSON',
    reasonMentions: ['not JSON'],
  },
  {
    name: 'JSON followed by garbage',
    body: `${withFields({})} trailing`,
    code: 'NOT_JSON',
    reasonMentions: ['not JSON'],
  },
  {
    name: 'single-quoted pseudo-JSON',
    body: "{'saleId': 'x'}",
    code: 'NOT_JSON',
    reasonMentions: ['not JSON'],
  },
  {
    name: 'a raw NUL byte in the JSON text',
    body: `{"saleId":"${SALE_ID}","userId":"a\u0000b","timestamp":"${TIMESTAMP}"}`,
    code: 'NOT_JSON',
    reasonMentions: ['not JSON'],
  },
  {
    name: 'a JSON array',
    body: `[${withFields({})}]`,
    code: 'NOT_AN_OBJECT',
    reasonMentions: ['an array', 'expected a JSON object'],
  },
  {
    name: 'JSON null',
    body: 'null',
    code: 'NOT_AN_OBJECT',
    reasonMentions: ['null', 'expected a JSON object'],
  },
  { name: 'a JSON number', body: '42', code: 'NOT_AN_OBJECT', reasonMentions: ['a number'] },
  { name: 'a JSON string', body: '"purchase"', code: 'NOT_AN_OBJECT', reasonMentions: ['a string'] },
  { name: 'a JSON boolean', body: 'true', code: 'NOT_AN_OBJECT', reasonMentions: ['a boolean'] },
  {
    name: 'a missing saleId',
    body: without('saleId'),
    code: 'INVALID_FIELDS',
    reasonMentions: ['saleId is required'],
  },
  {
    name: 'a missing userId',
    body: without('userId'),
    code: 'INVALID_FIELDS',
    reasonMentions: ['userId is required'],
  },
  {
    name: 'a missing timestamp',
    body: without('timestamp'),
    code: 'INVALID_FIELDS',
    reasonMentions: ['timestamp is required'],
  },
  {
    name: 'an empty object (every field named)',
    body: '{}',
    code: 'INVALID_FIELDS',
    reasonMentions: ['saleId is required', 'userId is required', 'timestamp is required'],
  },
  {
    name: 'a null saleId',
    body: withFields({ saleId: null }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['saleId must be a string'],
  },
  {
    name: 'an object saleId',
    body: withFields({ saleId: { id: SALE_ID } }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['saleId must be a string'],
  },
  {
    name: 'a number userId',
    body: withFields({ userId: 42 }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['userId must be a string'],
  },
  {
    name: 'an array timestamp',
    body: withFields({ timestamp: [TIMESTAMP] }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['timestamp must be a string'],
  },
  {
    name: 'an epoch-number timestamp',
    body: withFields({ timestamp: 1795000000000 }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['timestamp must be a string'],
  },
  {
    name: 'a non-UUID saleId',
    body: withFields({ saleId: 'sale-2026' }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['saleId must be a UUID'],
  },
  {
    name: 'a UUID in braces',
    body: withFields({ saleId: `{${SALE_ID}}` }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['saleId must be a UUID'],
  },
  {
    name: 'a UUID with a non-hex digit',
    body: withFields({ saleId: SALE_ID.replace('7f', 'g7') }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['saleId must be a UUID'],
  },
  {
    name: 'an empty userId',
    body: withFields({ userId: '' }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['userId must not be empty'],
  },
  {
    name: 'a userId of 256 characters',
    body: withFields({ userId: 'u'.repeat(256) }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['userId must be at most 255 characters'],
  },
  {
    name: 'a userId of 256 emoji',
    body: withFields({ userId: '😀'.repeat(256) }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['userId must be at most 255 characters'],
  },
  {
    name: 'a NUL character in userId',
    body: withFields({ userId: 'user\u0000-42' }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['userId must not contain a NUL character'],
  },
  {
    name: 'a timestamp that is not a date',
    body: withFields({ timestamp: 'yesterday' }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['timestamp must be an ISO 8601 date-time'],
  },
  {
    name: 'an impossible date (30 February)',
    body: withFields({ timestamp: '2026-02-30T10:00:00Z' }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['timestamp must be an ISO 8601'],
  },
  {
    name: 'a 29 February outside a leap year',
    body: withFields({ timestamp: '2027-02-29T10:00:00Z' }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['timestamp must be an ISO 8601'],
  },
  {
    name: 'month 13',
    body: withFields({ timestamp: '2026-13-01T10:00:00Z' }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['timestamp must be an ISO 8601'],
  },
  {
    name: 'hour 24',
    body: withFields({ timestamp: '2026-11-22T24:00:00Z' }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['timestamp must be an ISO 8601'],
  },
  {
    name: 'a date-time without a zone',
    body: withFields({ timestamp: '2026-11-22T10:00:00' }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['with a zone'],
  },
  {
    name: 'a date without a time',
    body: withFields({ timestamp: '2026-11-22' }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['timestamp must be an ISO 8601 date-time'],
  },
  {
    name: 'an RFC 2822 date',
    body: withFields({ timestamp: 'Sun, 22 Nov 2026 10:00:00 GMT' }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['timestamp must be an ISO 8601'],
  },
  {
    name: 'a saleId carried only by "__proto__"',
    body: `{"__proto__":{"saleId":"${SALE_ID}"},"userId":"user-42","timestamp":"${TIMESTAMP}"}`,
    code: 'INVALID_FIELDS',
    reasonMentions: ['saleId is required'],
  },
  {
    name: 'several wrong fields (each named)',
    body: json({ saleId: 'nope', userId: '', timestamp: 'later' }),
    code: 'INVALID_FIELDS',
    reasonMentions: ['saleId must be a UUID', 'userId must not be empty', 'timestamp must be an ISO 8601'],
  },
];

const toBuffer = (body: string | Buffer) => (Buffer.isBuffer(body) ? body : Buffer.from(body));
const contentTypeOf = (testCase: { contentType?: string }) =>
  'contentType' in testCase ? testCase.contentType : 'application/json';

describe('parsePurchase', () => {
  describe('accepts', () => {
    it.each(accepted)('$name', (testCase) => {
      const result = parsePurchase(toBuffer(testCase.body), contentTypeOf(testCase), MAX_BYTES);
      if (!result.ok) throw new Error(`rejected: ${result.rejection.code}: ${result.rejection.reason}`);
      const { saleId, userId, timestamp } = testCase.expected;
      if (saleId !== undefined) expect(result.purchase.saleId).toBe(saleId);
      if (userId !== undefined) expect(result.purchase.userId).toBe(userId);
      if (timestamp !== undefined) expect(result.purchase.timestamp.toISOString()).toBe(timestamp);
      // Only the three contract fields come out: extra fields never reach the database.
      expect(Object.keys(result.purchase).sort()).toEqual(['saleId', 'timestamp', 'userId']);
    });
  });

  describe('rejects', () => {
    it.each(rejected)('$name as $code', (testCase) => {
      const result = parsePurchase(toBuffer(testCase.body), contentTypeOf(testCase), MAX_BYTES);
      if (result.ok) throw new Error(`accepted: ${JSON.stringify(result.purchase)}`);
      expect(result.rejection.code).toBe(testCase.code);
      for (const words of testCase.reasonMentions) expect(result.rejection.reason).toContain(words);
    });
  });

  it('checks the size before anything else, so an over-size body is never decoded', () => {
    const result = parsePurchase(Buffer.alloc(MAX_BYTES + 1, 0xff), 'text/plain', MAX_BYTES);
    expect(result).toEqual({
      ok: false,
      rejection: { code: 'BODY_TOO_LARGE', reason: expect.stringContaining('over the limit') },
    });
  });

  it('survives JSON nested 100 000 levels deep', () => {
    const depth = 100_000;
    const body = Buffer.from('['.repeat(depth) + ']'.repeat(depth));
    const result = parsePurchase(body, 'application/json', body.length);
    expect(result).toEqual({
      ok: false,
      rejection: { code: 'NOT_AN_OBJECT', reason: expect.stringContaining('an array') },
    });
  });

  it('does not let a "__proto__" key change the prototype of what it returns', () => {
    const body = `{"saleId":"${SALE_ID}","userId":"user-42","timestamp":"${TIMESTAMP}","__proto__":{"polluted":true}}`;
    const result = parsePurchase(Buffer.from(body), 'application/json', MAX_BYTES);
    if (!result.ok) throw new Error(result.rejection.reason);
    expect('polluted' in result.purchase).toBe(false);
    expect('polluted' in {}).toBe(false);
  });
});
