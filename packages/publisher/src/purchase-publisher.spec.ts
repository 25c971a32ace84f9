import { describe, expect, it } from '@jest/globals';
import { InvalidPurchaseError, PublisherClosedError } from './publisher-errors.js';
import { PurchasePublisher } from './purchase-publisher.js';

const saleId = '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11';

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
