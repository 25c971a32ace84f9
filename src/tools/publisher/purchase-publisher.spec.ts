import { describe, expect, it } from '@jest/globals';
import { InvalidPurchaseError, PublisherClosedError } from './publisher-errors.js';
import { encodePurchase, PurchasePublisher } from './purchase-publisher.js';

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

describe('PurchasePublisher without a broker', () => {
  it.each([0, -1, 1.5])('refuses maxPendingPublishes %p', (maxPendingPublishes) => {
    expect(() => new PurchasePublisher({ url: 'amqp://127.0.0.1:1', maxPendingPublishes })).toThrow(
      RangeError,
    );
  });

  it.each([-1, 0.5])('refuses publishTimeoutMs %p', (publishTimeoutMs) => {
    expect(() => new PurchasePublisher({ url: 'amqp://127.0.0.1:1', publishTimeoutMs })).toThrow(RangeError);
  });

  it('rejects an invalid purchase before anything is sent or counted as pending', async () => {
    const publisher = new PurchasePublisher({ url: 'amqp://127.0.0.1:1', queue: 'q' });
    await expect(
      publisher.publish({ saleId: 'x', userId: 'u', timestamp: new Date() }),
    ).rejects.toBeInstanceOf(InvalidPurchaseError);
    expect(publisher.pendingPublishes).toBe(0);
    await publisher.close();
  });

  it('rejects a publish after close', async () => {
    const publisher = new PurchasePublisher({ url: 'amqp://127.0.0.1:1', queue: 'q' });
    await publisher.close();
    await expect(publisher.publish({ saleId, userId: 'u', timestamp: new Date() })).rejects.toBeInstanceOf(
      PublisherClosedError,
    );
  });
});
