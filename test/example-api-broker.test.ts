import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PurchasePublisher } from '@flashsale/publisher/nest';
import { type RunningApi, startApi } from '../examples/flash-sale-api/src/api.js';
import { parseApiSettings } from '../examples/flash-sale-api/src/settings.js';
import { FaultProxy } from './support/fault-proxy.js';
import { uniqueName, waitFor } from './support/harness.js';
import { TestWorld } from './support/test-worker.js';

/**
 * The example API while the broker goes away and comes back: its connection runs through a fault proxy in
 * front of the real broker; the worker consumes from the broker directly.
 */
const SALE_ID = '3c9e1f2a-7b4d-4e8f-a1c2-5d6e7f8a9b0c';
// Nothing listens on port 1 of loopback: the proxy passes each refused connection on as a reset.
const CLOSED_PORT = 1;

describe('the example flash-sale API when the broker goes away', () => {
  let world: TestWorld;
  let proxy: FaultProxy;
  let api: RunningApi;
  let brokerPort: number;

  beforeAll(async () => {
    world = await TestWorld.create('example_api_broker');
    await world.startWorker();
    const broker = new URL(world.rabbitUrl);
    brokerPort = Number(broker.port || 5672);
    proxy = await FaultProxy.start(broker.hostname, brokerPort);
    broker.host = proxy.address;
    api = await startApi(
      parseApiSettings({
        RABBITMQ_URL: broker.toString(),
        PURCHASE_QUEUE: world.queue,
        HTTP_PORT: '0',
        PUBLISH_TIMEOUT_MS: '3000',
        RETRY_AFTER_S: '2',
      }),
      { logger: false, host: '127.0.0.1' },
    );
    await waitFor('the API to be healthy', async () => (await fetch(`${api.url}/health`)).ok);
  });

  afterAll(async () => {
    await api?.app.close();
    await proxy?.close();
    await world?.close();
  });

  const purchase = (userId: string) =>
    fetch(`${api.url}/sales/${SALE_ID}/purchases`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId }),
    });
  const ordersOf = (userId: string) =>
    world.count('SELECT count(*) FROM orders WHERE user_id = $1', [userId]);

  it('answers 503 with Retry-After while the broker takes no connection, is unhealthy, and 202 again once it is back', async () => {
    proxy.retarget('127.0.0.1', CLOSED_PORT, { resetExisting: true });
    await waitFor(
      '/health to say the broker is away',
      async () => (await fetch(`${api.url}/health`)).status === 503,
    );
    const away = await purchase(uniqueName('away'));
    expect({ status: away.status, retryAfter: away.headers.get('retry-after') }).toEqual({
      status: 503,
      retryAfter: '2',
    });
    proxy.retarget('127.0.0.1', brokerPort);
    await waitFor('/health to be up again', async () => (await fetch(`${api.url}/health`)).ok, {
      timeoutMs: 15_000,
    });
    const userId = uniqueName('back');
    expect((await purchase(userId)).status).toBe(202);
    await waitFor('the order', async () => (await ordersOf(userId)) === 1);
  });

  it('answers 503 when the broker stops confirming (a black hole), and 202 once it confirms again', async () => {
    proxy.blackhole();
    try {
      const unconfirmed = await purchase(uniqueName('unconfirmed'));
      expect(unconfirmed.status).toBe(503);
      expect(await unconfirmed.json()).toMatchObject({ reason: 'timeout' });
    } finally {
      proxy.heal();
    }
    const userId = uniqueName('confirmed');
    expect((await purchase(userId)).status).toBe(202);
    await waitFor('the order', async () => (await ordersOf(userId)) === 1);
  });

  it('holds a purchase made while the broker is away, and answers 202 when it comes back within PUBLISH_TIMEOUT_MS', async () => {
    const publisher = api.app.get(PurchasePublisher);
    proxy.retarget('127.0.0.1', CLOSED_PORT, { resetExisting: true });
    await waitFor('the publisher to be disconnected', () => !publisher.state.connected);
    const userId = uniqueName('held');
    const answer = purchase(userId);
    await waitFor('the purchase to await its confirm', () => publisher.state.pendingPublishes === 1);
    proxy.retarget('127.0.0.1', brokerPort);
    expect((await answer).status).toBe(202);
    await waitFor('the order', async () => (await ordersOf(userId)) === 1);
  });
});
