import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request as httpRequest } from 'node:http';
import { PurchasePublisher } from '@flashsale/publisher/nest';
import { type RunningApi, startApi } from '../examples/flash-sale-api/src/api.js';
import { parseApiSettings } from '../examples/flash-sale-api/src/settings.js';
import { uniqueName, waitFor } from './support/harness.js';
import { TestWorld } from './support/test-worker.js';

/** The example flash-sale API over HTTP, against the real broker and an in-process worker. */
const SALE_ID = '0b6f1c8e-3d2a-4f5b-9c7e-1a2b3c4d5e6f';
// Nothing listens on port 1 of loopback: connecting is refused at once.
const UNREACHABLE_BROKER = 'amqp://guest:guest@127.0.0.1:1';

function apiFor(env: Record<string, string>): Promise<RunningApi> {
  return startApi(parseApiSettings({ HTTP_PORT: '0', ...env }), { logger: false, host: '127.0.0.1' });
}

async function post(api: RunningApi, path: string, body: string, contentType = 'application/json') {
  const response = await fetch(`${api.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  const text = await response.text();
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: (response.headers.get('content-type') ?? '').includes('json')
      ? (JSON.parse(text) as Record<string, unknown>)
      : text,
  };
}

const purchasePath = (saleId = SALE_ID, query = '') => `/sales/${saleId}/purchases${query}`;

describe('the example flash-sale API', () => {
  let world: TestWorld;
  let api: RunningApi;

  beforeAll(async () => {
    world = await TestWorld.create('example_api');
    await world.startWorker();
    api = await apiFor({ RABBITMQ_URL: world.rabbitUrl, PURCHASE_QUEUE: world.queue });
  });

  afterAll(async () => {
    await api?.app.close();
    await world?.close();
  });

  const ordersOf = (userId: string) =>
    world.sql.query<{ sale_id: string; purchased_at: Date }>(
      'SELECT sale_id::text, purchased_at FROM orders WHERE user_id = $1',
      [userId],
    );

  it('answers 202 once the broker confirmed the purchase, and the worker writes its order', async () => {
    const userId = uniqueName('buyer');
    const answer = await post(api, purchasePath(SALE_ID.toUpperCase()), JSON.stringify({ userId }));
    expect(answer).toMatchObject({
      status: 202,
      body: { saleId: SALE_ID, userId, messageId: expect.stringMatching(/^[0-9a-f-]{36}$/) },
    });
    const { timestamp } = answer.body as { timestamp: string };
    const orders = await waitFor(
      'the order',
      async () => (await ordersOf(userId)).rows.length === 1 && ordersOf(userId),
    );
    expect(orders.rows.map((row) => [row.sale_id, row.purchased_at.toISOString()])).toEqual([
      [SALE_ID, timestamp],
    ]);
  });

  it('answers 202 to the same user buying again, and the worker keeps one order', async () => {
    const userId = uniqueName('again');
    expect((await post(api, purchasePath(), JSON.stringify({ userId }))).status).toBe(202);
    expect((await post(api, purchasePath(), JSON.stringify({ userId }))).status).toBe(202);
    const fence = uniqueName('fence');
    expect((await post(api, purchasePath(), JSON.stringify({ userId: fence }))).status).toBe(202);
    await waitFor('the fence order', async () => (await ordersOf(fence)).rows.length === 1);
    await waitFor('the queue to empty', async () => (await world.queueDepth()) === 0);
    expect((await ordersOf(userId)).rows).toHaveLength(1);
  });

  describe('bad input', () => {
    it.each([
      ['a sale id that is not a UUID', purchasePath('sale-1'), { userId: 'u' }, ['saleId must be a UUID']],
      ['no userId', purchasePath(), { user: 'u' }, ['userId is required']],
      ['an empty userId', purchasePath(), { userId: '' }, ['userId must not be empty']],
      ['a userId that is a number', purchasePath(), { userId: 42 }, ['userId must be a string']],
      [
        'a userId of 256 characters',
        purchasePath(),
        { userId: 'x'.repeat(256) },
        ['userId must be at most 255 characters'],
      ],
      [
        'a userId with a NUL',
        purchasePath(),
        { userId: 'a\u0000b' },
        ['userId must not contain a NUL character'],
      ],
      [
        'a userId with a lone surrogate',
        purchasePath(),
        { userId: 'a\ud800' },
        ['userId must be valid Unicode (it holds a lone surrogate)'],
      ],
      [
        'a body that is an array',
        purchasePath(),
        [{ userId: 'u' }],
        ['body must be a JSON object such as {"userId":"user-42"}'],
      ],
      [
        'both a bad sale id and no userId',
        purchasePath('x'),
        {},
        ['saleId must be a UUID', 'userId is required'],
      ],
      [
        'a wait flag that is neither true nor false',
        purchasePath(SALE_ID, '?wait=soon'),
        { userId: 'u' },
        ['wait must be true or false'],
      ],
    ])('answers 400 with the reasons to %s', async (_case, path, body, reasons) => {
      const answer = await post(api, path, JSON.stringify(body));
      expect(answer).toEqual({
        status: 400,
        retryAfter: null,
        body: { statusCode: 400, error: 'Bad Request', message: 'invalid purchase', reasons },
      });
    });

    it('answers 400 to a body that is not JSON, in JSON', async () => {
      expect(await post(api, purchasePath(), '{"userId":')).toMatchObject({
        status: 400,
        body: { statusCode: 400, message: 'body is not valid JSON' },
      });
    });

    it('answers 400 to a body sent as another content type', async () => {
      expect(await post(api, purchasePath(), 'userId=u', 'application/x-www-form-urlencoded')).toMatchObject({
        status: 400,
        body: { reasons: ['body must be a JSON object such as {"userId":"user-42"}'] },
      });
    });

    it('answers 413 to a body over MAX_BODY_BYTES (16 KiB)', async () => {
      const answer = await post(
        api,
        purchasePath(),
        JSON.stringify({ userId: 'u', note: 'x'.repeat(16 * 1024) }),
      );
      expect(answer).toMatchObject({
        status: 413,
        body: {
          statusCode: 413,
          error: 'Payload Too Large',
          message: 'body is over the limit of 16384 bytes',
        },
      });
    });

    it('publishes none of them: no dead letter, no order', async () => {
      const fence = uniqueName('fence');
      expect((await post(api, purchasePath(), JSON.stringify({ userId: fence }))).status).toBe(202);
      await waitFor('the fence order', async () => (await ordersOf(fence)).rows.length === 1);
      await waitFor('the queue to empty', async () => (await world.queueDepth()) === 0);
      expect(await world.drainDeadLetters()).toEqual([]);
      expect(
        await world.count('SELECT count(*) FROM orders WHERE user_id IN ($1, $2)', ['u', 'a\ufffdb']),
      ).toBe(0);
    });
  });

  describe('?wait=true', () => {
    it("answers 201 with the order's id once the worker committed it, then 200 with the same order for a duplicate", async () => {
      const userId = uniqueName('waits');
      const first = await post(api, purchasePath(SALE_ID, '?wait=true'), JSON.stringify({ userId }));
      expect(first).toMatchObject({
        status: 201,
        body: { status: 'confirmed', saleId: SALE_ID, userId, orderId: expect.any(String) },
      });
      const { orderId, committedAt } = first.body as { orderId: string; committedAt: string };
      const stored = await world.sql.query<{ id: string; created_at: Date }>(
        'SELECT id::text, created_at FROM orders WHERE user_id = $1',
        [userId],
      );
      expect(stored.rows.map((row) => [row.id, row.created_at.toISOString()])).toEqual([
        [orderId, committedAt],
      ]);
      const again = await post(api, purchasePath(SALE_ID, '?wait=true'), JSON.stringify({ userId }));
      expect(again).toMatchObject({ status: 200, body: { status: 'duplicate', orderId, committedAt } });
    });

    it('answers 504 when no outcome comes within ORDER_WAIT_TIMEOUT_MS', async () => {
      const channel = await world.openChannel();
      const unconsumed = uniqueName('fsw.example_api_unconsumed');
      await channel.assertQueue(unconsumed, { durable: true });
      const waiting = await apiFor({
        RABBITMQ_URL: world.rabbitUrl,
        PURCHASE_QUEUE: unconsumed,
        ORDER_WAIT_TIMEOUT_MS: '300',
      });
      try {
        const answer = await post(
          waiting,
          purchasePath(SALE_ID, '?wait=true'),
          JSON.stringify({ userId: 'u' }),
        );
        expect(answer).toMatchObject({ status: 504, retryAfter: null, body: { reason: 'reply-timeout' } });
        // Queued all the same: a worker that comes later still makes its order.
        expect((await channel.checkQueue(unconsumed)).messageCount).toBe(1);
      } finally {
        await waiting.app.close();
        await channel.deleteQueue(unconsumed);
        await channel.close();
      }
    });
  });

  it('reports itself healthy on /health while connected to the broker', async () => {
    const response = await fetch(`${api.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok' });
  });

  it('answers the request in flight when it is told to stop, then closes', async () => {
    const closing = await apiFor({ RABBITMQ_URL: world.rabbitUrl, PURCHASE_QUEUE: world.queue });
    const userId = uniqueName('last');
    const body = JSON.stringify({ userId });
    const arrived = new Promise<void>((resolve) =>
      closing.app.getHttpServer().once('request', () => resolve()),
    );
    const answered = new Promise<number>((resolve, reject) => {
      const request = httpRequest(`${closing.url}${purchasePath()}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      request.on('response', (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
      request.flushHeaders();
      // The body follows once the API has begun closing: the purchase is published after close() began.
      void arrived.then(() => setImmediate(() => request.end(body)));
    });
    await arrived;
    const closeStartedAt = Date.now();
    const closed = closing.app.close();
    expect(await answered).toBe(202);
    await closed;
    // Not held open by the answered request's keep-alive connection (Node's keepAliveTimeout is 5 s).
    expect(Date.now() - closeStartedAt).toBeLessThan(3000);
    await waitFor('the order of the last purchase', async () => (await ordersOf(userId)).rows.length === 1);
    await expect(fetch(`${closing.url}/health`)).rejects.toThrow();
  });
});

describe('the example flash-sale API, when the broker is away', () => {
  let api: RunningApi;

  beforeAll(async () => {
    api = await apiFor({ RABBITMQ_URL: UNREACHABLE_BROKER, PUBLISH_TIMEOUT_MS: '300', RETRY_AFTER_S: '7' });
  });

  afterAll(async () => {
    await api?.app.close();
  });

  it('answers 503 with Retry-After once the broker did not confirm in PUBLISH_TIMEOUT_MS', async () => {
    const answer = await post(api, purchasePath(), JSON.stringify({ userId: 'u' }));
    expect(answer).toMatchObject({
      status: 503,
      retryAfter: '7',
      body: { statusCode: 503, error: 'Service Unavailable', reason: 'timeout' },
    });
  });

  it('reports itself unhealthy on /health, saying why', async () => {
    const response = await fetch(`${api.url}/health`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      status: 'error',
      error: { rabbitmq: { status: 'down', reason: 'not connected to the broker' } },
    });
  });
});

describe('the example flash-sale API, under back-pressure', () => {
  let api: RunningApi;

  afterAll(async () => {
    await api?.app.close();
  });

  it('answers 503 with Retry-After at once while MAX_PENDING_PUBLISHES purchases await a confirm', async () => {
    api = await apiFor({
      RABBITMQ_URL: UNREACHABLE_BROKER,
      MAX_PENDING_PUBLISHES: '1',
      PUBLISH_TIMEOUT_MS: '2000',
    });
    const publisher = api.app.get(PurchasePublisher);
    const first = post(api, purchasePath(), JSON.stringify({ userId: 'first' }));
    await waitFor('the first purchase to await its confirm', () => publisher.pendingPublishes === 1);
    const startedAt = Date.now();
    const second = await post(api, purchasePath(), JSON.stringify({ userId: 'second' }));
    expect(second).toMatchObject({ status: 503, retryAfter: '1', body: { reason: 'backpressure' } });
    expect(Date.now() - startedAt).toBeLessThan(1000);
    expect(await first).toMatchObject({ status: 503, body: { reason: 'timeout' } });
  });
});
