import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { purchaseSchema, validPurchase } from './purchase.schema.js';

describe('validPurchase, the schema’s fast path', () => {
  const field = <T>(values: fc.Arbitrary<T>) => fc.option(values, { nil: undefined, freq: 10 });
  const hostile = fc
    .array(
      fc.oneof(
        fc.string({ maxLength: 8 }),
        fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)),
        fc.constantFrom('\u0000', '\u202E', '\u{1F600}', ' '),
      ),
      { maxLength: 300 },
    )
    .map((parts) => parts.join(''));
  const isoDate = fc
    .date({
      min: new Date('0001-01-01T00:00:00Z'),
      max: new Date('9999-12-31T23:59:59Z'),
      noInvalidDate: true,
    })
    .map((date) => date.toISOString());
  const edgeDates = fc.constantFrom(
    '2026-11-22T10:00:00Z',
    '2026-11-22T10:00+02:30',
    '9999-12-31T23:59:59.999-01:00',
    '0000-06-01T10:00:00Z',
    '2026-02-30T10:00:00Z',
    '2026-11-22T10:00:00',
    '2026-11-22T24:00:00Z',
    '2028-02-29T10:00:00.000Z',
    '2027-02-29T10:00:00.000Z',
    '2026-13-01T00:00:00.000Z',
    '2026-00-10T00:00:00.000Z',
    '2026-11-22T24:00:00.000Z',
    '2026-11-22T23:60:00.000Z',
    '0099-12-31T23:59:59.999Z',
    '0100-01-01T00:00:00.000Z',
    '0000-01-01T00:00:00.000Z',
    '2026-11-22t10:00:00.000z',
    '2026-11-22T10:00:00.000+',
    '+02026-11-22T10:00:00.00Z',
  );
  // Valid values weigh most, so that both answers of the rule come up often.
  const body = fc.record({
    saleId: field(
      fc.oneof(
        { weight: 6, arbitrary: fc.uuid().map((id) => (id.length % 2 ? id.toUpperCase() : id)) },
        { weight: 1, arbitrary: hostile },
        { weight: 1, arbitrary: fc.integer() },
      ),
    ),
    userId: field(
      fc.oneof(
        { weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 20 }) },
        { weight: 2, arbitrary: hostile },
        { weight: 1, arbitrary: fc.constant('') },
        { weight: 1, arbitrary: fc.integer() },
      ),
    ),
    timestamp: field(
      fc.oneof(
        { weight: 6, arbitrary: isoDate },
        { weight: 2, arbitrary: edgeDates },
        { weight: 1, arbitrary: hostile },
      ),
    ),
  });

  it('accepts exactly what the schema accepts, with the same purchase', () => {
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(body, (value) => {
        const fast = validPurchase(value);
        const parsed = purchaseSchema.safeParse(value);
        expect(fast !== undefined).toBe(parsed.success);
        if (fast && parsed.success) expect(fast).toEqual(parsed.data);
        seen[parsed.success ? 'accepted' : 'refused']++;
      }),
      { numRuns: 2000 },
    );
    // Both sides of the rule were tried, not only refusals.
    expect(seen.accepted).toBeGreaterThan(100);
    expect(seen.refused).toBeGreaterThan(100);
  });
});
