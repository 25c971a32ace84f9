/** `PurchasePublisherModule` in a Nest application against the real broker: wiring, lifecycle, health. */
import { describe, expect, it } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  PURCHASE_PUBLISHER_OPTIONS,
  PurchasePublisher,
  PurchasePublisherHealthIndicator,
  PurchasePublisherModule,
} from '@flashsale/publisher/nest';
import { PublisherClosedError } from '@flashsale/publisher';
import { TEST_RABBITMQ_URL, waitFor } from './support/harness.js';
import { testQueues } from './support/test-queues.js';

const saleId = '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11';
const purchase = (userId: string) => ({ saleId, userId, timestamp: new Date() });
const UNREACHABLE_URL = 'amqp://guest:guest@127.0.0.1:1';

/** What an API's own provider looks like: the publisher injected by its class. */
@Injectable()
class Sales {
  constructor(readonly publisher: PurchasePublisher) {}
}

const BROKER_URL = Symbol('BROKER_URL');
@Module({ providers: [{ provide: BROKER_URL, useValue: TEST_RABBITMQ_URL }], exports: [BROKER_URL] })
class BrokerConfigModule {}

describe('PurchasePublisherModule', () => {
  const queues = testQueues('fsw.nest-publisher');

  it('injects the publisher by its class, starts it on init and publishes with confirms', async () => {
    const name = await queues.declare();
    const app = await Test.createTestingModule({
      imports: [PurchasePublisherModule.forRoot({ url: TEST_RABBITMQ_URL, queue: name })],
      providers: [Sales],
    }).compile();
    const { publisher } = app.get(Sales);
    expect(publisher).toBe(app.get(PurchasePublisher));
    expect(publisher.state.connected).toBe(false); // nothing started before init
    await app.init();
    await publisher.waitUntilConnected();
    await publisher.publish(purchase('nest-1'));
    expect(await queues.depth(name)).toBe(1);
    await app.close();
  });

  it('drains the confirms of publishes in flight when the application shuts down, then closes', async () => {
    const name = await queues.declare();
    const app = await Test.createTestingModule({
      imports: [PurchasePublisherModule.forRoot({ url: TEST_RABBITMQ_URL, queue: name })],
    }).compile();
    await app.init();
    const publisher = app.get(PurchasePublisher);
    let confirmed = 0;
    const publishes = Array.from({ length: 500 }, (_, index) =>
      publisher.publish(purchase(`drain-${index}`)).then(() => (confirmed += 1)),
    );
    await app.close();
    expect(confirmed).toBe(500);
    await Promise.all(publishes);
    expect(await queues.depth(name)).toBe(500);
    expect(publisher.state.closed).toBe(true);
    await expect(publisher.publish(purchase('late'))).rejects.toBeInstanceOf(PublisherClosedError);
  });

  it('builds its options in forRootAsync from what the imported modules provide', async () => {
    const name = await queues.declare();
    const app = await Test.createTestingModule({
      imports: [
        PurchasePublisherModule.forRootAsync({
          imports: [BrokerConfigModule],
          inject: [BROKER_URL],
          useFactory: (url: string) => ({ url, queue: name, maxPendingPublishes: 7 }),
        }),
      ],
      providers: [Sales],
    }).compile();
    await app.init();
    const { publisher } = app.get(Sales);
    expect(app.get(PURCHASE_PUBLISHER_OPTIONS)).toEqual({
      url: TEST_RABBITMQ_URL,
      queue: name,
      maxPendingPublishes: 7,
    });
    expect(publisher.queue).toBe(name);
    expect(publisher.state.maxPendingPublishes).toBe(7);
    await publisher.publish(purchase('async-1'));
    expect(await queues.depth(name)).toBe(1);
    await app.close();
  });

  it('offers the publisher to every module when global', async () => {
    @Module({ providers: [Sales], exports: [Sales] })
    class SalesModule {}
    const app = await Test.createTestingModule({
      imports: [PurchasePublisherModule.forRoot({ url: TEST_RABBITMQ_URL, global: true }), SalesModule],
    }).compile();
    expect(app.get(Sales).publisher).toBe(app.get(PurchasePublisher));
    expect(app.get(PURCHASE_PUBLISHER_OPTIONS)).toEqual({ url: TEST_RABBITMQ_URL });
    await app.close();
  });

  it('reports up once connected and down with the reason when the broker is away or it is closed', async () => {
    const reachable = await Test.createTestingModule({
      imports: [PurchasePublisherModule.forRoot({ url: TEST_RABBITMQ_URL, queue: await queues.declare() })],
    }).compile();
    await reachable.init();
    const health = reachable.get(PurchasePublisherHealthIndicator);
    await waitFor('the publisher to connect', () => health.isHealthy('rabbitmq').rabbitmq.status === 'up');
    await reachable.close();
    expect(health.isHealthy('rabbitmq').rabbitmq).toMatchObject({
      status: 'down',
      reason: 'the publisher is closed',
    });

    const unreachable = await Test.createTestingModule({
      imports: [PurchasePublisherModule.forRoot({ url: UNREACHABLE_URL, closeTimeoutMs: 100 })],
    }).compile();
    await unreachable.init();
    expect(unreachable.get(PurchasePublisherHealthIndicator).isHealthy('broker').broker).toMatchObject({
      status: 'down',
      reason: 'not connected to the broker',
    });
    await unreachable.close();
  });

  it('shuts down within closeTimeoutMs while publishes wait for an unreachable broker', async () => {
    const app = await Test.createTestingModule({
      imports: [PurchasePublisherModule.forRoot({ url: UNREACHABLE_URL, closeTimeoutMs: 200 })],
    }).compile();
    await app.init();
    const waiting = app
      .get(PurchasePublisher)
      .publish(purchase('stuck'))
      .catch((error: unknown) => error);
    const startedAt = Date.now();
    await app.close();
    expect(Date.now() - startedAt).toBeLessThan(2000);
    expect(await waiting).toMatchObject({ reason: 'publisher-closed' });
  });
});
