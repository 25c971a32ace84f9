import { describe, expect, it } from '@jest/globals';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { PublisherState } from '../publisher-options.js';
import type { PurchasePublisher } from '../purchase-publisher.js';
import { PurchasePublisherHealthIndicator } from './purchase-publisher.health.js';

const healthy: PublisherState = {
  connected: true,
  blockedReason: undefined,
  pendingPublishes: 3,
  maxPendingPublishes: 10,
  closed: false,
};

/** The indicator over a publisher in `state` (the state is all it reads, with the queue name). */
const indicatorFor = (state: Partial<PublisherState>) =>
  new PurchasePublisherHealthIndicator(
    { queue: 'purchase', state: { ...healthy, ...state } } as unknown as PurchasePublisher,
    new HealthIndicatorService(),
  );

describe('PurchasePublisherHealthIndicator', () => {
  it('is up while connected and taking publishes, with its counts', () => {
    expect(indicatorFor({}).isHealthy('rabbitmq')).toEqual({
      rabbitmq: { status: 'up', queue: 'purchase', pendingPublishes: 3, maxPendingPublishes: 10 },
    });
  });

  it('is still up one publish below the bound', () => {
    expect(indicatorFor({ pendingPublishes: 9 }).isHealthy('rabbitmq').rabbitmq.status).toBe('up');
  });

  // [case, state, reason]; the first that holds is the one given
  it.each([
    ['closed', { closed: true, connected: false }, 'the publisher is closed'],
    ['disconnected', { connected: false }, 'not connected to the broker'],
    [
      'blocked by the broker',
      { blockedReason: 'low on memory' },
      'the broker blocks publishing: low on memory',
    ],
    [
      'refusing publishes',
      { pendingPublishes: 10 },
      'back-pressure: 10 publishes await a broker confirm (maxPendingPublishes 10)',
    ],
  ])('is down while %s, saying why', (_case, state, reason) => {
    expect(indicatorFor(state).isHealthy('rabbitmq').rabbitmq).toMatchObject({ status: 'down', reason });
  });
});
