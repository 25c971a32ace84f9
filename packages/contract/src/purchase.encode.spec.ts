import { describe, expect, it } from '@jest/globals';
import { decodePurchase } from './purchase.decode.js';
import { encodePurchase } from './purchase.encode.js';

const saleId = '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11';

describe('encodePurchase', () => {
  it('writes a Date timestamp as ISO 8601 and only the three contract fields', () => {
    const extra = { saleId, userId: 'user-42', timestamp: new Date('2026-11-22T10:00:00.000Z'), coupon: 'X' };
    const encoded = encodePurchase(extra);
    expect(encoded.ok && JSON.parse(encoded.body.toString())).toEqual({
      saleId,
      userId: 'user-42',
      timestamp: '2026-11-22T10:00:00.000Z',
    });
  });

  it('keeps a timestamp given as a string exactly as given', () => {
    const encoded = encodePurchase({ saleId, userId: 'u', timestamp: '2026-11-22T11:00:00+01:00' });
    expect(encoded.ok && JSON.parse(encoded.body.toString()).timestamp).toBe('2026-11-22T11:00:00+01:00');
  });

  it.each([
    ['a saleId that is not a UUID', { saleId: 'sale-1', userId: 'u', timestamp: new Date() }, 'saleId'],
    ['an empty userId', { saleId, userId: '', timestamp: new Date() }, 'userId'],
    ['an invalid Date', { saleId, userId: 'u', timestamp: new Date('nope') }, 'timestamp'],
    ['a timestamp without a zone', { saleId, userId: 'u', timestamp: '2026-11-22T10:00:00' }, 'timestamp'],
  ])('refuses %s, naming the field', (_case, purchase, field) => {
    const encoded = encodePurchase(purchase);
    expect(encoded.ok).toBe(false);
    expect(!encoded.ok && encoded.problems.join(' ')).toContain(field);
  });
});

describe('encodePurchase then decodePurchase', () => {
  it('gives back the purchase it was given, as the worker reads it', () => {
    const input = {
      saleId: saleId.toUpperCase(),
      userId: 'user-\u{1F600}',
      timestamp: new Date('2026-11-22T10:00:00Z'),
    };
    const encoded = encodePurchase(input);
    if (!encoded.ok) throw new Error(encoded.problems.join('; '));
    expect(decodePurchase(encoded.body)).toEqual({
      ok: true,
      purchase: { saleId, userId: 'user-\u{1F600}', timestamp: input.timestamp },
    });
  });
});
