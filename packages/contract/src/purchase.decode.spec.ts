import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decodePurchase, type RejectionCode } from './purchase.decode.js';

const MAX_BYTES = 2048;
const JSON_TYPE = 'application/json';
const SALE_ID = '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11';
const TIMESTAMP = '2026-11-22T10:00:00.000Z';

type Fields = Record<string, unknown>;
const valid: Fields = { saleId: SALE_ID, userId: 'user-42', timestamp: TIMESTAMP };
const withFields = (fields: Fields) => JSON.stringify({ ...valid, ...fields });
const without = (field: string) => JSON.stringify({ ...valid, [field]: undefined });
/** A valid body padded with an extra field to exactly `bytes` bytes. */
const bodyOfBytes = (bytes: number) =>
  withFields({ padding: 'x'.repeat(bytes - Buffer.byteLength(withFields({ padding: '' }))) });
const parse = (body: string | Buffer, contentType: string | undefined = JSON_TYPE) =>
  decodePurchase(Buffer.isBuffer(body) ? body : Buffer.from(body), { contentType, maxBytes: MAX_BYTES });

function expectPurchase(result: ReturnType<typeof parse>) {
  if (!result.ok) throw new Error(`rejected: ${result.rejection.code}: ${result.rejection.reason}`);
  // Only the three contract fields come out: extra fields never reach the database.
  expect(Object.keys(result.purchase).sort()).toEqual(['saleId', 'timestamp', 'userId']);
  return result.purchase;
}

// [case, body, the field checked, its expected value in the purchase]
// prettier-ignore
const accepted: [string, string, 'saleId' | 'userId' | 'timestamp', string][] = [
  ['the contract example', withFields({}), 'userId', 'user-42'],
  ['an upper-case saleId, lower-cased', withFields({ saleId: SALE_ID.toUpperCase() }), 'saleId', SALE_ID],
  ['unknown extra fields', withFields({ quantity: 3, nested: { a: [1, 2] } }), 'userId', 'user-42'],
  ['an extra "constructor" key', withFields({ constructor: { prototype: { admin: true } } }), 'userId', 'user-42'],
  ['a userId of one character', withFields({ userId: 'u' }), 'userId', 'u'],
  ['a userId of 255 characters', withFields({ userId: 'u'.repeat(255) }), 'userId', 'u'.repeat(255)],
  ['a userId of 255 emoji (characters are counted)', withFields({ userId: '😀'.repeat(255) }), 'userId', '😀'.repeat(255)],
  ['a SQL-looking userId, verbatim', withFields({ userId: "'); DROP TABLE orders;--" }), 'userId', "'); DROP TABLE orders;--"],
  ['a right-to-left userId, verbatim', withFields({ userId: 'مستخدم\u200f-٤٢' }), 'userId', 'مستخدم\u200f-٤٢'],
  ['a userId with surrounding spaces, verbatim', withFields({ userId: '  user 42  ' }), 'userId', '  user 42  '],
  ['a timestamp with a numeric offset', withFields({ timestamp: '2026-11-22T12:00:00+02:00' }), 'timestamp', TIMESTAMP],
  ['a timestamp with a compact offset', withFields({ timestamp: '2026-11-22T05:00:00-0500' }), 'timestamp', TIMESTAMP],
  ['a timestamp without fractional seconds', withFields({ timestamp: '2026-11-22T10:00:00Z' }), 'timestamp', TIMESTAMP],
  ['a timestamp with microseconds', withFields({ timestamp: '2026-11-22T10:00:00.000123Z' }), 'timestamp', TIMESTAMP],
  ['a timestamp on a leap day', withFields({ timestamp: '2028-02-29T10:00:00Z' }), 'timestamp', '2028-02-29T10:00:00.000Z'],
  ['the first instant of the year 0001', withFields({ timestamp: '0001-01-01T00:00:00Z' }), 'timestamp', '0001-01-01T00:00:00.000Z'],
  ['a canonical timestamp of the year 0099', withFields({ timestamp: '0099-12-31T23:59:59.999Z' }), 'timestamp', '0099-12-31T23:59:59.999Z'],
  ['a canonical timestamp of the year 0100', withFields({ timestamp: '0100-01-01T00:00:00.000Z' }), 'timestamp', '0100-01-01T00:00:00.000Z'],
  ['a canonical timestamp on a leap day', withFields({ timestamp: '2000-02-29T23:59:59.999Z' }), 'timestamp', '2000-02-29T23:59:59.999Z'],
  ['the last canonical instant', withFields({ timestamp: '9999-12-31T23:59:59.999Z' }), 'timestamp', '9999-12-31T23:59:59.999Z'],
  ['a lower-case t and z', withFields({ timestamp: '2026-11-22t10:00:00.000z' }), 'timestamp', TIMESTAMP],
  ['an upper-case UUID with every hex letter', withFields({ saleId: 'ABCDEF01-2345-6789-ABCD-EF0123456789' }), 'saleId', 'abcdef01-2345-6789-abcd-ef0123456789'],
  ['a body of exactly the size limit', bodyOfBytes(MAX_BYTES), 'userId', 'user-42'],
  ['JSON surrounded by whitespace', `\n  ${withFields({})}  \n`, 'userId', 'user-42'],
];

// [case, code, body, words the reason must contain: together they name the problem]
// prettier-ignore
const rejected: [string, RejectionCode, string | Buffer, string[]][] = [
  ['a body one byte over the limit', 'BODY_TOO_LARGE', bodyOfBytes(MAX_BYTES + 1), ['2049 bytes', 'limit of 2048 bytes']],
  ['invalid UTF-8 bytes', 'INVALID_UTF8', Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0xff, 0x22, 0x7d]), ['not valid UTF-8']],
  ['an empty body', 'NOT_JSON', '', ['body is empty']],
  ['a whitespace body', 'NOT_JSON', ' \n\t ', ['body is empty']],
  ['plain text', 'NOT_JSON', 'buy now', ['not JSON']],
  ['truncated JSON', 'NOT_JSON', withFields({}).slice(0, 30), ['not JSON']],
  ['JSON followed by garbage', 'NOT_JSON', `${withFields({})} trailing`, ['not JSON']],
  ['single-quoted pseudo-JSON', 'NOT_JSON', "{'saleId': 'x'}", ['not JSON']],
  ['a raw NUL byte in the JSON text', 'NOT_JSON', withFields({ userId: '@' }).replace('@', 'a\u0000b'), ['not JSON']],
  ['a JSON array', 'NOT_AN_OBJECT', `[${withFields({})}]`, ['body is an array', 'expected a JSON object']],
  ['JSON null', 'NOT_AN_OBJECT', 'null', ['body is null', 'expected a JSON object']],
  ['a JSON number', 'NOT_AN_OBJECT', '42', ['body is a number']],
  ['a JSON string', 'NOT_AN_OBJECT', '"purchase"', ['body is a string']],
  ['a JSON boolean', 'NOT_AN_OBJECT', 'true', ['body is a boolean']],
  ['a missing saleId', 'INVALID_FIELDS', without('saleId'), ['saleId is required']],
  ['a missing userId', 'INVALID_FIELDS', without('userId'), ['userId is required']],
  ['a missing timestamp', 'INVALID_FIELDS', without('timestamp'), ['timestamp is required']],
  ['an empty object', 'INVALID_FIELDS', '{}', ['saleId is required', 'userId is required', 'timestamp is required']],
  ['a null saleId', 'INVALID_FIELDS', withFields({ saleId: null }), ['saleId must be a string']],
  ['an object saleId', 'INVALID_FIELDS', withFields({ saleId: { id: SALE_ID } }), ['saleId must be a string']],
  ['a number userId', 'INVALID_FIELDS', withFields({ userId: 42 }), ['userId must be a string']],
  ['an array timestamp', 'INVALID_FIELDS', withFields({ timestamp: [TIMESTAMP] }), ['timestamp must be a string']],
  ['an epoch-number timestamp', 'INVALID_FIELDS', withFields({ timestamp: 1795000000000 }), ['timestamp must be a string']],
  ['a non-UUID saleId', 'INVALID_FIELDS', withFields({ saleId: 'sale-2026' }), ['saleId must be a UUID']],
  ['a UUID in braces', 'INVALID_FIELDS', withFields({ saleId: `{${SALE_ID}}` }), ['saleId must be a UUID']],
  ['a UUID with a non-hex digit', 'INVALID_FIELDS', withFields({ saleId: SALE_ID.replace('7f', 'g7') }), ['saleId must be a UUID']],
  ['an empty userId', 'INVALID_FIELDS', withFields({ userId: '' }), ['userId must not be empty']],
  ['a userId of 256 characters', 'INVALID_FIELDS', withFields({ userId: 'u'.repeat(256) }), ['userId must be at most 255 characters']],
  ['a userId of 256 emoji', 'INVALID_FIELDS', withFields({ userId: '😀'.repeat(256) }), ['userId must be at most 255 characters']],
  ['a NUL character in userId', 'INVALID_FIELDS', withFields({ userId: 'user\u0000-42' }), ['userId must not contain a NUL']],
  ['a lone surrogate in userId', 'INVALID_FIELDS', withFields({ userId: '@' }).replace('@', 'user-\\ud800'), ['userId must be valid Unicode']],
  ['a timestamp that is not a date', 'INVALID_FIELDS', withFields({ timestamp: 'yesterday' }), ['timestamp must be an ISO 8601 date-time']],
  ['an impossible date (30 February)', 'INVALID_FIELDS', withFields({ timestamp: '2026-02-30T10:00:00Z' }), ['timestamp must be an ISO 8601']],
  ['a canonical 30 February', 'INVALID_FIELDS', withFields({ timestamp: '2026-02-30T10:00:00.000Z' }), ['timestamp must be an ISO 8601']],
  ['a canonical 29 February of 1900', 'INVALID_FIELDS', withFields({ timestamp: '1900-02-29T10:00:00.000Z' }), ['timestamp must be an ISO 8601']],
  ['a canonical second 60', 'INVALID_FIELDS', withFields({ timestamp: '2026-11-22T10:00:60.000Z' }), ['timestamp must be an ISO 8601']],
  ['a canonical form with a letter for a digit', 'INVALID_FIELDS', withFields({ timestamp: '2026-11-2OT10:00:00.000Z' }), ['timestamp must be an ISO 8601']],
  ['a canonical form with a sign for a digit', 'INVALID_FIELDS', withFields({ timestamp: '2026-11-22T10:-1:00.000Z' }), ['timestamp must be an ISO 8601']],
  ['a canonical year 0000', 'INVALID_FIELDS', withFields({ timestamp: '0000-06-01T10:00:00.000Z' }), ['not be before the year 0001']],
  ['a UUID with a hyphen out of place', 'INVALID_FIELDS', withFields({ saleId: '7f1d2c7e5-b8a-4c1e-9a55-3c2b7d9e0f11' }), ['saleId must be a UUID']],
  ['a UUID with a digit for a hyphen', 'INVALID_FIELDS', withFields({ saleId: SALE_ID.replace('-', 'a') }), ['saleId must be a UUID']],
  ['a UUID one character short', 'INVALID_FIELDS', withFields({ saleId: SALE_ID.slice(1) }), ['saleId must be a UUID']],
  ['a UUID with a G', 'INVALID_FIELDS', withFields({ saleId: SALE_ID.replace(/.$/, 'G') }), ['saleId must be a UUID']],
  ['a UUID with a hyphen for a digit', 'INVALID_FIELDS', withFields({ saleId: SALE_ID.replace(/^./, '-') }), ['saleId must be a UUID']],
  ['29 February outside a leap year', 'INVALID_FIELDS', withFields({ timestamp: '2027-02-29T10:00:00Z' }), ['timestamp must be an ISO 8601']],
  ['month 13', 'INVALID_FIELDS', withFields({ timestamp: '2026-13-01T10:00:00Z' }), ['timestamp must be an ISO 8601']],
  ['hour 24', 'INVALID_FIELDS', withFields({ timestamp: '2026-11-22T24:00:00Z' }), ['timestamp must be an ISO 8601']],
  ['a date-time without a zone', 'INVALID_FIELDS', withFields({ timestamp: '2026-11-22T10:00:00' }), ['with a zone']],
  ['a date without a time', 'INVALID_FIELDS', withFields({ timestamp: '2026-11-22' }), ['timestamp must be an ISO 8601 date-time']],
  ['an RFC 2822 date', 'INVALID_FIELDS', withFields({ timestamp: 'Sun, 22 Nov 2026 10:00:00 GMT' }), ['timestamp must be an ISO 8601']],
  ['a timestamp in the year 0000', 'INVALID_FIELDS', withFields({ timestamp: '0000-06-01T10:00:00Z' }), ['not be before the year 0001']],
  ['an offset moving it into 0000', 'INVALID_FIELDS', withFields({ timestamp: '0001-01-01T00:30:00+01:00' }), ['not be before the year 0001']],
  ['a saleId carried only by "__proto__"', 'INVALID_FIELDS', `{"__proto__":{"saleId":"${SALE_ID}"},"userId":"u","timestamp":"${TIMESTAMP}"}`, ['saleId is required']],
  [
    'several wrong fields, each named',
    'INVALID_FIELDS',
    JSON.stringify({ saleId: 'nope', userId: '', timestamp: 'later' }),
    ['saleId must be a UUID', 'userId must not be empty', 'timestamp must be an ISO 8601'],
  ],
];

describe('decodePurchase', () => {
  it.each(accepted)('accepts %s', (_case, body, field, expected) => {
    const purchase = expectPurchase(parse(body));
    const value = purchase[field];
    expect(value instanceof Date ? value.toISOString() : value).toBe(expected);
  });

  it.each(rejected)('rejects %s as %s', (_case, code, body, reasonMentions) => {
    const result = parse(body);
    if (result.ok) throw new Error(`accepted: ${JSON.stringify(result.purchase)}`);
    expect(result.rejection.code).toBe(code);
    for (const words of reasonMentions) expect(result.rejection.reason).toContain(words);
  });

  it.each([[undefined], [''], ['application/json; charset=utf-8'], ['application/vnd.flashsale+json']])(
    'reads content type %p as JSON',
    (contentType) => {
      expect(expectPurchase(parse(withFields({}), contentType)).userId).toBe('user-42');
    },
  );

  it.each([['text/plain'], ['application/xml'], ['application/octet-stream']])(
    'rejects content type %s, naming it',
    (contentType) => {
      expect(parse(withFields({}), contentType)).toEqual({
        ok: false,
        rejection: {
          code: 'WRONG_CONTENT_TYPE',
          reason: `content type is "${contentType}", expected application/json`,
        },
      });
    },
  );

  it('names each problem once: an unreadable timestamp gets one sentence', () => {
    expect(parse(withFields({ timestamp: 'yesterday' }))).toEqual({
      ok: false,
      rejection: {
        code: 'INVALID_FIELDS',
        reason: 'timestamp must be an ISO 8601 date-time with a zone, e.g. 2026-11-22T10:00:00.000Z',
        identifiers: { saleId: '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11', userId: 'user-42' },
      },
    });
  });

  it('keeps only string identifiers of an invalid body, for the logs', () => {
    const result = parse(
      Buffer.from(JSON.stringify({ saleId: 42, userId: 'user-late', timestamp: 'yesterday' })),
    );
    expect(result.ok ? undefined : result.rejection.identifiers).toEqual({ userId: 'user-late' });
  });

  it('accepts a timestamp that an offset moves past the year 9999', () => {
    const timestamp = '9999-12-31T23:00:00-02:00';
    expect(expectPurchase(parse(withFields({ timestamp }))).timestamp.getTime()).toBe(Date.parse(timestamp));
  });

  it('checks the size before anything else, so an over-size body is never decoded', () => {
    const result = decodePurchase(Buffer.alloc(MAX_BYTES + 1, 0xff), {
      contentType: 'text/plain',
      maxBytes: MAX_BYTES,
    });
    expect(result.ok || result.rejection.code).toBe('BODY_TOO_LARGE');
  });

  it('survives JSON nested 100 000 levels deep', () => {
    const depth = 100_000;
    const body = Buffer.from('['.repeat(depth) + ']'.repeat(depth));
    const result = decodePurchase(body, { contentType: JSON_TYPE, maxBytes: body.length });
    expect(result).toEqual({
      ok: false,
      rejection: { code: 'NOT_AN_OBJECT', reason: expect.stringContaining('an array') },
    });
  });

  it('does not let a "__proto__" key change the prototype of what it returns', () => {
    const purchase = expectPurchase(
      parse(withFields({ userId: 'u' }).replace(/}$/, ',"__proto__":{"polluted":true}}')),
    );
    expect('polluted' in purchase).toBe(false);
    expect('polluted' in {}).toBe(false);
  });
});

describe('decodePurchase, a NestJS envelope', () => {
  const purchase = { saleId: SALE_ID, userId: 'user-42', timestamp: TIMESTAMP };
  // What ClientRMQ writes: JSON.stringify of {pattern, data} (emit), with `id` assigned after (send).
  const emitted = (data: unknown, pattern: unknown = 'purchase') => JSON.stringify({ pattern, data });
  const sent = (data: unknown, id: string) => JSON.stringify({ pattern: 'purchase', data, id });
  const rejection = (result: ReturnType<typeof parse>) => {
    if (result.ok) throw new Error(`accepted: ${JSON.stringify(result.purchase)}`);
    return result.rejection;
  };

  it('reads the data of an emitted envelope as the purchase, and says it was an envelope', () => {
    const result = parse(emitted(purchase), undefined);
    expect(expectPurchase(result)).toEqual({ ...purchase, timestamp: new Date(TIMESTAMP) });
    expect(result.envelope).toEqual({ id: undefined });
  });

  it('keeps the id of a sent envelope for the reply', () => {
    const result = parse(sent(purchase, 'a1b2c3'), undefined);
    expectPurchase(result);
    expect(result.envelope).toEqual({ id: 'a1b2c3' });
  });

  it('gives no id for an id that is not a string', () => {
    const result = parse(JSON.stringify({ pattern: 'purchase', data: purchase, id: 7 }));
    expect(expectPurchase(result).userId).toBe('user-42');
    expect(result.envelope).toEqual({ id: undefined });
  });

  it('applies the same rules to the data: an upper-case saleId lower-cased, extra fields dropped', () => {
    const data = { ...purchase, saleId: SALE_ID.toUpperCase(), quantity: 3 };
    expect(expectPurchase(parse(emitted(data))).saleId).toBe(SALE_ID);
  });

  it('marks no plain body as an envelope', () => {
    const result = parse(withFields({}));
    expectPurchase(result);
    expect('envelope' in result).toBe(false);
  });

  it.each([
    ['an extra "pattern" field', withFields({ pattern: 'refund' })],
    ['extra "pattern" and "data" fields', withFields({ pattern: 'refund', data: 'x' })],
    ['extra "pattern", "data" and "id" fields', withFields({ pattern: 'refund', data: { a: 1 }, id: 'x' })],
  ])('reads a plain body with %s as the plain purchase', (_case, body) => {
    const result = parse(body);
    expect(expectPurchase(result).userId).toBe('user-42');
    expect(result.envelope).toBeUndefined();
  });

  it('judges a body with a saleId of its own as a plain body, even with "pattern" and "data"', () => {
    const result = parse(withFields({ saleId: 'nope', pattern: 'purchase', data: purchase }));
    expect(rejection(result)).toMatchObject({ code: 'INVALID_FIELDS', reason: 'saleId must be a UUID' });
    expect(result.envelope).toBeUndefined();
  });

  it.each([
    ['no "data"', JSON.stringify({ pattern: 'purchase' })],
    ['no "data", with an id', JSON.stringify({ pattern: 'purchase', id: 'x' })],
    ['no "pattern"', JSON.stringify({ data: purchase })],
  ])('reads a body with %s as a plain body, naming the missing fields', (_case, body) => {
    const result = parse(body);
    expect(rejection(result)).toMatchObject({
      code: 'INVALID_FIELDS',
      reason: 'saleId is required; userId is required; timestamp is required',
    });
    expect(result.envelope).toBeUndefined();
  });

  it('rejects another pattern, naming it and the one expected', () => {
    const result = parse(sent(purchase, 'r1').replace('"purchase"', '"refund"'));
    expect(rejection(result)).toEqual({
      code: 'UNKNOWN_PATTERN',
      reason: 'envelope pattern is "refund", expected "purchase"',
    });
    expect(result.envelope).toEqual({ id: 'r1' });
  });

  it('compares the pattern exactly', () => {
    expect(rejection(parse(emitted(purchase, 'Purchase'))).code).toBe('UNKNOWN_PATTERN');
    expect(rejection(parse(emitted(purchase, 'purchase '))).code).toBe('UNKNOWN_PATTERN');
  });

  it.each([
    ['a number', 42],
    ['an object', { cmd: 'purchase' }],
    ['null', null],
    ['an array', ['purchase']],
    ['a boolean', true],
  ])('rejects a pattern that is %s, saying what it is', (what, pattern) => {
    const result = parse(emitted(purchase, pattern));
    expect(rejection(result)).toEqual({
      code: 'UNKNOWN_PATTERN',
      reason: `envelope pattern is ${what}, expected the string "purchase"`,
    });
    expect(result.envelope).toEqual({ id: undefined });
  });

  it('quotes a pattern with NUL, escape, bidi and lone-surrogate characters safe', () => {
    const body = emitted(purchase, '@').replace('"@"', '"pur\\u0000chase\\u001b[31m\\u202e\\ud800"');
    const { reason } = rejection(parse(body));
    expect(reason).toBe('envelope pattern is "pur\uFFFDchase\uFFFD[31m\uFFFD\uFFFD", expected "purchase"');
    expect(reason.isWellFormed()).toBe(true);
  });

  it('quotes a megabyte pattern cut to 100 characters', () => {
    const body = Buffer.from(emitted(purchase, 'p'.repeat(1024 * 1024)));
    const result = decodePurchase(body, { contentType: JSON_TYPE, maxBytes: body.length });
    const { reason } = rejection(result);
    expect(reason).toBe(`envelope pattern is "${'p'.repeat(99)}…", expected "purchase"`);
  });

  it('reads the pattern it is given instead of the default', () => {
    const body = Buffer.from(emitted(purchase, 'orders.create'));
    expect(
      expectPurchase(decodePurchase(body, { maxBytes: MAX_BYTES, pattern: 'orders.create' })).userId,
    ).toBe('user-42');
    const refused = decodePurchase(Buffer.from(emitted(purchase)), {
      maxBytes: MAX_BYTES,
      pattern: 'orders.create',
    });
    expect(rejection(refused).reason).toBe('envelope pattern is "purchase", expected "orders.create"');
  });

  it.each([
    ['a string', JSON.stringify(purchase)],
    ['null', null],
    ['an array', [purchase]],
    ['a number', 1],
  ])('rejects data that is %s as not an object', (what, data) => {
    const result = parse(sent(data, 'd1'));
    expect(rejection(result)).toEqual({
      code: 'NOT_AN_OBJECT',
      reason: `envelope data is ${what}, expected a JSON object`,
    });
    expect(result.envelope).toEqual({ id: 'd1' });
  });

  it('names the wrong fields of the data under "data", with the identifiers it carried', () => {
    const result = parse(emitted({ saleId: SALE_ID, userId: 'user-late', timestamp: 'yesterday' }));
    expect(rejection(result)).toEqual({
      code: 'INVALID_FIELDS',
      reason: 'data.timestamp must be an ISO 8601 date-time with a zone, e.g. 2026-11-22T10:00:00.000Z',
      identifiers: { saleId: SALE_ID, userId: 'user-late' },
    });
    expect(result.envelope).toEqual({ id: undefined });
  });

  it('reads an envelope in the data as a purchase without its fields, not as a second envelope', () => {
    const { reason } = rejection(parse(emitted(JSON.parse(emitted(purchase)))));
    expect(reason).toBe('data.saleId is required; data.userId is required; data.timestamp is required');
  });

  it('holds the whole body, envelope included, to the size limit', () => {
    const data = { ...purchase, padding: '' };
    data.padding = 'x'.repeat(MAX_BYTES - Buffer.byteLength(JSON.stringify(data)));
    expect(Buffer.byteLength(JSON.stringify(data))).toBe(MAX_BYTES);
    expect(rejection(parse(emitted(data))).code).toBe('BODY_TOO_LARGE');
  });

  it('refuses an envelope with a content type that is not JSON', () => {
    expect(rejection(parse(emitted(purchase), 'text/plain')).code).toBe('WRONG_CONTENT_TYPE');
  });

  it('does not let a "__proto__" key in the data change what it returns', () => {
    const body = emitted(purchase).replace(/}}$/, ',"__proto__":{"polluted":true}}}');
    expect('polluted' in expectPurchase(parse(body))).toBe(false);
  });

  it('decides every body wrapped in an envelope as it decides the body itself', () => {
    const strings = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom(SALE_ID, TIMESTAMP, ''));
    const body = fc.record(
      {
        saleId: fc.oneof(fc.uuid(), strings),
        userId: strings,
        timestamp: fc.oneof(strings, fc.date().map(String)),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(body, (data) => {
        const plain = parse(JSON.stringify(data));
        const wrapped = parse(emitted(data));
        expect(wrapped.ok).toBe(plain.ok);
        if (plain.ok && wrapped.ok) expect(wrapped.purchase).toEqual(plain.purchase);
        if (!plain.ok && !wrapped.ok) expect(wrapped.rejection.code).toBe(plain.rejection.code);
      }),
      { numRuns: 500 },
    );
  });
});
