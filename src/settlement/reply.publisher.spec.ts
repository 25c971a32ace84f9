import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { Channel, ConsumeMessage, Options } from 'amqplib';
import { EventEmitter } from 'node:events';
import type { ReplyResult } from '../observability/worker-metrics.js';
import type { Outcome, Settled } from '../purchases/outcome.js';
import type { Delivery } from '../consumer/delivery.js';
import type { CommittedOrder, OrderKey, OrderLookup } from './reply-order.lookup.js';
import { ReplyPublisher } from './reply.publisher.js';

/** A channel that records publishes, and can throw as a closed amqplib channel does, or return a message. */
class FakeChannel extends EventEmitter {
  readonly published: { routingKey: string; body: unknown; options: Options.Publish }[] = [];
  throwOnPublish: Error | undefined;
  closed = false;
  publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): boolean {
    if (this.throwOnPublish) throw this.throwOnPublish;
    expect(exchange).toBe('');
    this.published.push({ routingKey, body: JSON.parse(content.toString()), options });
    return true;
  }
  close(): Promise<void> {
    this.closed = true;
    this.emit('close');
    return Promise.resolve();
  }
}

class FakeOrders implements OrderLookup {
  readonly queries: OrderKey[][] = [];
  fail: Error | undefined;
  readonly rows = new Map<string, CommittedOrder>();
  find(keys: readonly OrderKey[]): Promise<(CommittedOrder | undefined)[]> {
    this.queries.push([...keys]);
    if (this.fail) return Promise.reject(this.fail);
    return Promise.resolve(keys.map((key) => this.rows.get(`${key.saleId}/${key.userId}`)));
  }
}

const saleId = '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11';
const committedAt = new Date('2026-12-01T10:00:00.000Z');
let tag = 0;

function settled(
  outcome: Outcome,
  properties: Record<string, unknown>,
  body: unknown = {},
): Settled<Delivery> {
  const message = {
    fields: { deliveryTag: ++tag },
    properties: { headers: {}, ...properties },
    content: Buffer.from(JSON.stringify(body)),
  } as unknown as ConsumeMessage;
  return { token: { message, deliveryCount: 1 } as Delivery, outcome };
}

const confirmed = (userId: string, kind: 'confirmed' | 'duplicate' = 'confirmed'): Outcome => ({
  kind,
  purchase: { saleId, userId, timestamp: new Date() },
  committedAt,
});
const rejected: Outcome = { kind: 'rejected', rejection: { code: 'NOT_JSON', reason: 'body is empty' } };

describe('ReplyPublisher', () => {
  let channel: FakeChannel;
  let opened: number;
  let openFails: Error | undefined;
  let orders: FakeOrders;
  let counted: Record<ReplyResult, number>;
  let warnings: string[];
  let publisher: ReplyPublisher;

  const create = (warningsPerInterval = 100) =>
    new ReplyPublisher(
      {
        openChannel: () => {
          opened++;
          if (openFails) return Promise.reject(openFails);
          channel = new FakeChannel();
          return Promise.resolve(channel as unknown as Channel);
        },
      },
      orders,
      { replied: (result, count = 1) => (counted[result] += count) },
      { maxMessageBytes: 16_384, warningsPerInterval },
    );
  /** Every reply under way has been sent or counted. */
  const settledAll = () => publisher.close(Date.now() + 5000);

  beforeEach(() => {
    opened = 0;
    openFails = undefined;
    orders = new FakeOrders();
    for (const userId of ['u1', 'u2', 'u3']) {
      orders.rows.set(`${saleId}/${userId}`, { id: `order-${userId}`, committedAt });
    }
    counted = { sent: 0, failed: 0, returned: 0 };
    warnings = [];
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((line: unknown) => {
      warnings.push(typeof line === 'string' ? line : (line as { msg: string }).msg);
    });
    publisher = create();
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('replies to each committed message with its order, looked up in one query for the batch', async () => {
    publisher.send([
      settled(confirmed('u1'), { replyTo: 'replies', correlationId: 'c1' }),
      settled(confirmed('u2', 'duplicate'), { replyTo: 'amq.rabbitmq.reply-to.x', correlationId: 'c2' }),
    ]);
    await settledAll();
    expect(orders.queries).toEqual([
      [
        { saleId, userId: 'u1', timestamp: expect.any(Date) },
        { saleId, userId: 'u2', timestamp: expect.any(Date) },
      ],
    ]);
    expect(channel.published).toEqual([
      {
        routingKey: 'replies',
        body: {
          status: 'confirmed',
          orderId: 'order-u1',
          committedAt: committedAt.toISOString(),
          saleId,
          userId: 'u1',
        },
        options: { correlationId: 'c1', contentType: 'application/json', mandatory: true },
      },
      {
        routingKey: 'amq.rabbitmq.reply-to.x',
        body: expect.objectContaining({ status: 'duplicate', orderId: 'order-u2' }),
        options: expect.objectContaining({ correlationId: 'c2' }),
      },
    ]);
    expect(counted).toEqual({ sent: 2, failed: 0, returned: 0 });
  });

  it("replies to a NestJS envelope in Nest's packet, and to a rejection without a query", async () => {
    publisher.send([
      settled(rejected, { replyTo: 'r', correlationId: 'c1' }, { pattern: 'purchase', data: 1, id: 'c1' }),
    ]);
    await settledAll();
    expect(orders.queries).toEqual([]);
    expect(channel.published[0]?.body).toEqual({
      id: 'c1',
      err: { status: 'rejected', code: 'NOT_JSON', reason: 'body is empty' },
      isDisposed: true,
    });
  });

  it('sends no reply for a retry: its message comes back', async () => {
    publisher.send([
      settled({ kind: 'retry', error: new Error('db away') }, { replyTo: 'r', correlationId: 'c' }),
    ]);
    await settledAll();
    expect(opened).toBe(0);
    expect(counted).toEqual({ sent: 0, failed: 0, returned: 0 });
  });

  it.each([
    ['a replyTo of a megabyte', { replyTo: 'q'.repeat(1 << 20), correlationId: 'c' }],
    ['a correlationId of a megabyte', { replyTo: 'q', correlationId: 'c'.repeat(1 << 20) }],
    ['no correlationId', { replyTo: 'q' }],
  ])('counts %s as failed, without publishing, and replies to the others', async (_what, properties) => {
    publisher.send([settled(rejected, properties), settled(rejected, { replyTo: 'ok', correlationId: 'c' })]);
    await settledAll();
    expect(channel.published.map(({ routingKey }) => routingKey)).toEqual(['ok']);
    expect(counted).toEqual({ sent: 1, failed: 1, returned: 0 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.length).toBeLessThan(200);
  });

  it('counts a reply the broker returns as returned', async () => {
    publisher.send([settled(rejected, { replyTo: 'no-such-queue', correlationId: 'c' })]);
    await settledAll();
    const returned = { fields: { routingKey: 'no-such-queue\u0000' }, properties: {} };
    channel.emit('return', returned);
    expect(counted).toEqual({ sent: 1, failed: 0, returned: 1 });
    expect(warnings).toEqual(['reply returned unroutable: no queue no-such-queue\uFFFD']);
  });

  it('counts as failed a reply whose publish throws (channel closed), and opens a new channel next time', async () => {
    publisher.send([settled(rejected, { replyTo: 'r', correlationId: 'c' })]);
    await new Promise((resolve) => setImmediate(resolve));
    channel.throwOnPublish = new Error('Channel closed');
    publisher.send([settled(rejected, { replyTo: 'r', correlationId: 'c' })]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(counted).toEqual({ sent: 1, failed: 1, returned: 0 });
    channel.emit('close');
    publisher.send([settled(rejected, { replyTo: 'r', correlationId: 'c' })]);
    await settledAll();
    expect(opened).toBe(2);
    expect(counted).toEqual({ sent: 2, failed: 1, returned: 0 });
  });

  it('counts every reply as failed when no channel opens (no connection)', async () => {
    openFails = new Error('not connected to the broker');
    publisher.send([
      settled(rejected, { replyTo: 'r', correlationId: 'c' }),
      settled(rejected, { replyTo: 'r', correlationId: 'd' }),
    ]);
    await settledAll();
    expect(counted).toEqual({ sent: 0, failed: 2, returned: 0 });
    expect(warnings).toEqual(['2 replies: no reply: no channel to send it on: not connected to the broker']);
  });

  it('counts committed replies as failed when their orders cannot be read, or one is missing', async () => {
    orders.fail = new Error('connection terminated');
    publisher.send([
      settled(confirmed('u1'), { replyTo: 'r', correlationId: 'c' }),
      settled(rejected, { replyTo: 'r', correlationId: 'd' }),
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    orders.fail = undefined;
    publisher.send([
      settled(confirmed('u1'), { replyTo: 'r', correlationId: 'e' }),
      settled(confirmed('gone'), { replyTo: 'r', correlationId: 'f' }),
    ]);
    await settledAll();
    expect(channel.published.map(({ options }) => options.correlationId)).toEqual(['d', 'e']);
    expect(counted).toEqual({ sent: 2, failed: 2, returned: 0 });
    expect(warnings).toEqual([
      'no reply: looking up the orders failed: connection terminated',
      'no reply: its committed order was not found',
    ]);
  });

  it('caps the warn lines per interval and says how many were left out', async () => {
    publisher = create(2);
    publisher.send(Array.from({ length: 5 }, () => settled(rejected, { replyTo: '' })));
    await settledAll();
    expect(counted.failed).toBe(5);
    expect(warnings).toEqual([
      'no reply: its replyTo is empty',
      'no reply: its replyTo is empty',
      '3 more reply failures were not logged one by one (MESSAGE_WARNINGS_PER_10S); flashsale_replies_total counts them all',
    ]);
  });

  it('after close, counts what is settled as failed and closes its channel', async () => {
    publisher.send([settled(rejected, { replyTo: 'r', correlationId: 'c' })]);
    await settledAll();
    expect(channel.closed).toBe(true);
    publisher.send([settled(rejected, { replyTo: 'r', correlationId: 'c' })]);
    expect(counted).toEqual({ sent: 1, failed: 1, returned: 0 });
  });
});
