/**
 * `PurchasePublisher.request` against the real broker, with a stand-in for the worker's reply step that
 * answers each request as a test tells it, in the worker's reply format (docs/contract.md): the client's
 * side of request-response, its correlation, timeouts and close; then once against the worker itself.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type ConsumeMessage } from 'amqplib';
import {
  InvalidReplyError,
  PublisherClosedError,
  PublishNotConfirmedError,
  PurchasePublisher,
  PurchaseRejectedError,
  PurchaseReplyTimeoutError,
} from '@flashsale/publisher';
import { randomUUID } from 'node:crypto';
import { TEST_RABBITMQ_URL, uniqueName, waitFor } from './support/harness.js';
import { testQueues } from './support/test-queues.js';
import { TestWorld } from './support/test-worker.js';

const saleId = '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11';
const purchase = (userId: string) => ({ saleId, userId, timestamp: new Date('2026-11-22T10:00:00.000Z') });
const confirmed = (message: ConsumeMessage, status = 'confirmed') => {
  const body = JSON.parse(message.content.toString()) as { saleId: string; userId: string };
  return JSON.stringify({
    status,
    orderId: `order-of-${body.userId}`,
    committedAt: '2026-11-22T10:00:01.250Z',
    saleId: body.saleId,
    userId: body.userId,
  });
};

type Answer = (message: ConsumeMessage) => (string | Buffer)[];

describe('PurchasePublisher.request against the broker', () => {
  const queues = testQueues('fsw.request');

  /** A queue whose messages are answered by `answer` (each string one reply), and a publisher to it. */
  async function answeredBy(answer: Answer, replyTimeoutMs = 5000) {
    const queue = await queues.declare();
    const received: ConsumeMessage[] = [];
    await queues.channel.consume(queue, (message) => {
      if (!message) return;
      received.push(message);
      for (const reply of answer(message)) {
        queues.channel.sendToQueue(String(message.properties.replyTo), Buffer.from(reply), {
          correlationId: String(message.properties.correlationId),
          contentType: 'application/json',
        });
      }
      queues.channel.ack(message);
    });
    const publisher = new PurchasePublisher({ url: TEST_RABBITMQ_URL, queue, replyTimeoutMs }).start();
    return { publisher, received, queue };
  }

  it('resolves with the committed order, the purchase sent persistent with a reply address', async () => {
    const { publisher, received } = await answeredBy((message) => [confirmed(message)]);
    const outcome = await publisher.request(purchase('user-1'), { messageId: 'request-1' });
    await publisher.close();
    expect(outcome).toEqual({
      status: 'confirmed',
      orderId: 'order-of-user-1',
      committedAt: new Date('2026-11-22T10:00:01.250Z'),
      saleId,
      userId: 'user-1',
    });
    const [message] = received;
    // The broker names the direct reply-to channel in the properties it delivers.
    expect(String(message?.properties.replyTo)).toMatch(/^amq\.rabbitmq\.reply-to\./);
    expect(message?.properties.correlationId).toEqual(expect.any(String));
    expect(message?.properties.correlationId).not.toBe('request-1');
    expect(message?.properties.messageId).toBe('request-1');
    expect(message?.properties.deliveryMode).toBe(2);
    expect(message?.properties.contentType).toBe('application/json');
    expect(JSON.parse(String(message?.content))).toEqual({
      saleId,
      userId: 'user-1',
      timestamp: '2026-11-22T10:00:00.000Z',
    });
  });

  it('resolves with a duplicate as a success', async () => {
    const { publisher } = await answeredBy((message) => [confirmed(message, 'duplicate')]);
    const outcome = await publisher.request(purchase('user-2'));
    await publisher.close();
    expect(outcome.status).toBe('duplicate');
    expect(outcome.orderId).toBe('order-of-user-2');
  });

  it('rejects with PurchaseRejectedError, its code and reason, for a rejection', async () => {
    const { publisher } = await answeredBy(() => [
      JSON.stringify({ status: 'rejected', code: 'REFUSED_BY_DATABASE', reason: 'userId refused' }),
    ]);
    const refused = await publisher.request(purchase('user-3')).catch((error: unknown) => error);
    await publisher.close();
    expect(refused).toBeInstanceOf(PurchaseRejectedError);
    expect(refused).toMatchObject({ code: 'REFUSED_BY_DATABASE', reason: 'userId refused' });
  });

  it('gives every request its own reply when the replies come in another order', async () => {
    const held: ConsumeMessage[] = [];
    // Nothing answered on arrival: the test answers all 30 once they are in, last first.
    const { publisher } = await answeredBy((message) => (held.push(message), []));
    const requests = Array.from({ length: 30 }, (_, index) => publisher.request(purchase(`user-${index}`)));
    await waitFor('30 requests in the queue', () => held.length === 30);
    for (const message of [...held].reverse()) {
      queues.channel.sendToQueue(String(message.properties.replyTo), Buffer.from(confirmed(message)), {
        correlationId: String(message.properties.correlationId),
      });
    }
    const outcomes = await Promise.all(requests);
    await publisher.close();
    expect(outcomes.map((outcome) => outcome.userId)).toEqual(
      Array.from({ length: 30 }, (_, index) => `user-${index}`),
    );
  });

  it('takes the first of two replies (a redelivered message) and drops the second', async () => {
    const { publisher } = await answeredBy((message) => [
      confirmed(message),
      JSON.stringify({ status: 'rejected', code: 'DELIVERY_LIMIT', reason: 'late' }),
    ]);
    const first = await publisher.request(purchase('user-4'));
    // The dropped reply leaves the publisher as it was: the next request gets its own.
    const next = await publisher.request(purchase('user-5'));
    await publisher.close();
    expect([first.status, next.status, next.userId]).toEqual(['confirmed', 'confirmed', 'user-5']);
    expect(publisher.pendingRequests).toBe(0);
  });

  it('rejects with PurchaseReplyTimeoutError when no reply comes within timeoutMs', async () => {
    const { publisher, received } = await answeredBy(() => []);
    const startedAt = Date.now();
    const refused = await publisher
      .request(purchase('user-6'), { timeoutMs: 300 })
      .catch((error: unknown) => error);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(290);
    expect(refused).toBeInstanceOf(PurchaseReplyTimeoutError);
    expect(refused).toMatchObject({ timeoutMs: 300 });
    expect(received).toHaveLength(1);
    expect(publisher.pendingRequests).toBe(0);
    await publisher.close();
  });

  it.each([
    ['not JSON', 'ok', 'not JSON'],
    ['an unknown status', JSON.stringify({ status: 'maybe' }), 'unknown status "maybe"'],
    ['a confirmation without its order', JSON.stringify({ status: 'confirmed' }), 'without orderId'],
    [
      'a rejection without a reason',
      JSON.stringify({ status: 'rejected', code: 'X' }),
      'without code or reason',
    ],
  ])('rejects with InvalidReplyError for a reply that is %s', async (_case, reply, problem) => {
    const { publisher } = await answeredBy(() => [reply]);
    const refused = await publisher.request(purchase('user-7')).catch((error: unknown) => error);
    await publisher.close();
    expect(refused).toBeInstanceOf(InvalidReplyError);
    expect((refused as InvalidReplyError).problem).toContain(problem);
  });

  it('rejects with the publish error when no queue takes the purchase, without waiting for a reply', async () => {
    const publisher = new PurchasePublisher({ url: TEST_RABBITMQ_URL, queue: uniqueName('fsw.missing') });
    const startedAt = Date.now();
    const refused = await publisher.request(purchase('user-8')).catch((error: unknown) => error);
    expect(Date.now() - startedAt).toBeLessThan(5000);
    expect(refused).toBeInstanceOf(PublishNotConfirmedError);
    expect((refused as PublishNotConfirmedError).reason).toBe('unroutable');
    expect(publisher.pendingRequests).toBe(0);
    await publisher.close();
  });

  it('waits on close for the reply of a request in flight', async () => {
    const held: ConsumeMessage[] = [];
    const { publisher } = await answeredBy((message) => (held.push(message), []));
    const request = publisher.request(purchase('user-9'));
    await waitFor('the request in the queue', () => held.length === 1);
    const closed = publisher.close({ timeoutMs: 5000 });
    const [message] = held as [ConsumeMessage];
    queues.channel.sendToQueue(String(message.properties.replyTo), Buffer.from(confirmed(message)), {
      correlationId: String(message.properties.correlationId),
    });
    await closed;
    expect((await request).userId).toBe('user-9');
  });

  it('rejects a request still unanswered when close gives up waiting', async () => {
    const { publisher, received } = await answeredBy(() => []);
    const request = publisher.request(purchase('user-10')).catch((error: unknown) => error);
    await waitFor('the request in the queue', () => received.length === 1);
    await publisher.close({ timeoutMs: 100 });
    expect(await request).toBeInstanceOf(PublisherClosedError);
  });
});

describe('PurchasePublisher.request against the worker', () => {
  let world: TestWorld;

  beforeAll(async () => {
    world = await TestWorld.create('publisher_request');
    await world.startWorker({ BATCH_WAIT_MS: 5 });
  });
  afterAll(() => world.close());

  it('resolves with the committed order, then with the same order as a duplicate', async () => {
    const publisher = new PurchasePublisher({ url: TEST_RABBITMQ_URL, queue: world.queue }).start();
    const sale = randomUUID();
    const first = await publisher.request({ saleId: sale, userId: 'buyer', timestamp: new Date() });
    const again = await publisher.request({ saleId: sale, userId: 'buyer', timestamp: new Date() });
    await publisher.close();
    const { rows } = await world.sql.query<{ id: string; created_at: Date }>(
      'SELECT id, created_at FROM orders WHERE sale_id = $1',
      [sale],
    );
    expect(rows).toHaveLength(1);
    expect(first).toEqual({
      status: 'confirmed',
      orderId: rows[0]?.id,
      committedAt: rows[0]?.created_at,
      saleId: sale,
      userId: 'buyer',
    });
    expect(again).toMatchObject({ status: 'duplicate', orderId: rows[0]?.id });
  });
});
