import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Channel, ChannelModel, ConsumeMessage, Options } from 'amqplib';
import amqp from 'amqplib';
import { randomUUID } from 'node:crypto';
import { METRIC } from '../src/observability/metric-names.js';
import type { TestWorker } from './support/test-worker.js';
import { waitFor } from './support/harness.js';
import { purchase, type PurchaseBody, scrapedMetric, TestWorld } from './support/test-worker.js';

/** A reply as the requester received it, with what the database and the DLQ held at that moment. */
interface Received {
  body: Record<string, unknown>;
  properties: ConsumeMessage['properties'];
  ordersOfUser: number;
  deadLetters: number;
}

/**
 * An AMQP RPC client as any would be (amqplib, direct reply-to): it consumes `amq.rabbitmq.reply-to` in
 * no-ack mode and publishes its requests on the same channel, with replyTo and a correlationId.
 */
class RpcClient {
  readonly replies = new Map<string, Received[]>();
  private constructor(
    private readonly connection: ChannelModel,
    private readonly channel: Channel,
    private readonly world: TestWorld,
  ) {}

  static async connect(world: TestWorld): Promise<RpcClient> {
    const connection = await amqp.connect(world.rabbitUrl);
    const channel = await connection.createChannel();
    const client = new RpcClient(connection, channel, world);
    await channel.consume(
      'amq.rabbitmq.reply-to',
      (message) => {
        if (message) void client.received(message);
      },
      { noAck: true },
    );
    return client;
  }

  /** Publishes a request; returns its correlationId. */
  request(body: PurchaseBody | string, options: Options.Publish = {}): string {
    const correlationId = options.correlationId ?? randomUUID();
    this.channel.sendToQueue(
      this.world.queue,
      Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
      {
        persistent: true,
        contentType: 'application/json',
        replyTo: 'amq.rabbitmq.reply-to',
        ...options,
        correlationId,
      },
    );
    return correlationId;
  }

  async reply(correlationId: string): Promise<Received> {
    const [first] = await waitFor(`the reply to ${JSON.stringify(correlationId).slice(0, 60)}`, () =>
      this.replies.get(correlationId),
    );
    return first as Received;
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  private async received(message: ConsumeMessage): Promise<void> {
    const body = JSON.parse(message.content.toString()) as Record<string, unknown>;
    // What was true when the reply arrived: the order committed, the dead-letter copy in its queue.
    const ordersOfUser =
      typeof body.userId === 'string'
        ? await this.world.count('SELECT count(*) FROM orders WHERE id = $1 AND user_id = $2', [
            body.orderId,
            body.userId,
          ])
        : 0;
    const deadLetters = await this.world.queueDepth(this.world.deadLetterQueue);
    const id = message.properties.correlationId as string;
    this.replies.set(id, [
      ...(this.replies.get(id) ?? []),
      { body, properties: message.properties, ordersOfUser, deadLetters },
    ]);
  }
}

describe('a worker replying to messages that ask for it (replyTo, correlationId)', () => {
  let world: TestWorld;
  let worker: TestWorker;
  let client: RpcClient;
  const replies = (result: string) => scrapedMetric(worker, METRIC.replies, `result="${result}"`);

  beforeAll(async () => {
    world = await TestWorld.create('replies');
    worker = await world.startWorker({ BATCH_SIZE: 50, BATCH_WAIT_MS: 5 });
    client = await RpcClient.connect(world);
  });
  afterAll(async () => {
    await client.close();
    await world.close();
  });

  it('replies confirmed with the committed order: its id and commit time, once the row exists', async () => {
    const body = purchase();
    const { body: reply, properties, ordersOfUser } = await client.reply(client.request(body));
    const [order] = (
      await world.sql.query<{ id: string; created_at: Date }>(
        'SELECT id, created_at FROM orders WHERE user_id = $1',
        [body.userId],
      )
    ).rows;
    expect(reply).toEqual({
      status: 'confirmed',
      orderId: order?.id,
      committedAt: order?.created_at.toISOString(),
      saleId: body.saleId,
      userId: body.userId,
    });
    expect(properties.contentType).toBe('application/json');
    expect(ordersOfUser).toBe(1);
  });

  it('replies duplicate with the order that exists, to a second purchase of the same user', async () => {
    const body = purchase();
    const first = await client.reply(client.request(body));
    const second = await client.reply(client.request({ ...body, timestamp: new Date().toISOString() }));
    expect(second.body).toEqual({ ...first.body, status: 'duplicate' });
    expect(await world.count('SELECT count(*) FROM orders WHERE user_id = $1', [body.userId])).toBe(1);
  });

  it('replies to every message of a batch, each with its own order', async () => {
    const bodies = Array.from({ length: 40 }, () => purchase());
    const ids = bodies.map((body) => client.request(body));
    const received = await Promise.all(ids.map((id) => client.reply(id)));
    expect(received.map(({ body }) => body.userId)).toEqual(bodies.map(({ userId }) => userId));
    expect(new Set(received.map(({ body }) => body.orderId)).size).toBe(40);
  });

  it('replies rejected with the reason once the dead-letter copy is in its queue', async () => {
    const { body, deadLetters } = await client.reply(client.request('{"saleId":"not-a-uuid"}'));
    expect(body).toEqual({
      status: 'rejected',
      code: 'INVALID_FIELDS',
      reason: 'saleId must be a UUID; userId is required; timestamp is required',
    });
    expect(deadLetters).toBeGreaterThanOrEqual(1);
    await world.deadLetters(1);
  });

  it('replies to a queue of the requester, not only to direct reply-to', async () => {
    const channel = await world.openChannel();
    try {
      const { queue } = await channel.assertQueue('', { exclusive: true });
      const correlationId = client.request(purchase(), { replyTo: queue });
      const message = await waitFor('the reply in the requester queue', () =>
        channel.get(queue, { noAck: true }),
      );
      expect(message.properties.correlationId).toBe(correlationId);
      expect(JSON.parse(message.content.toString())).toMatchObject({ status: 'confirmed' });
    } finally {
      await channel.close();
    }
  });

  it('sends no reply to a message without replyTo', async () => {
    const sentBefore = await replies('sent');
    const body = purchase();
    await world.publish([body]);
    await waitFor(
      'its order',
      async () => (await world.count('SELECT count(*) FROM orders WHERE user_id = $1', [body.userId])) === 1,
    );
    await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
    expect(await replies('sent')).toBe(sentBefore);
  });

  describe('with a hostile reply address', () => {
    it.each([
      ['a queue that does not exist', 'no-such-queue-' + randomUUID()],
      ['NUL and control characters', 'q\u0000\u0001\u001b[2J\u202e'],
      ['a direct reply-to name that no requester holds', 'amq.rabbitmq.reply-to.AAAAAAAA'],
      ['255 bytes of multi-byte characters', 'é'.repeat(127) + 'x'],
    ])('acks %s, commits its order and counts the reply returned', async (_what, replyTo) => {
      const returnedBefore = await replies('returned');
      const body = purchase();
      client.request(body, { replyTo });
      await waitFor(
        'its order',
        async () =>
          (await world.count('SELECT count(*) FROM orders WHERE user_id = $1', [body.userId])) === 1,
      );
      await waitFor(
        'the reply counted returned',
        async () => (await replies('returned')) === returnedBefore + 1,
      );
      await waitFor(
        'the queue to be empty and nothing in flight',
        async () => (await world.queueDepth()) === 0 && worker.worker.inFlight === 0,
      );
      // The worker goes on replying.
      expect((await client.reply(client.request(purchase()))).body).toMatchObject({ status: 'confirmed' });
    });

    it('carries a correlationId with NUL and control characters back as it came', async () => {
      const correlationId = 'c\u0000\u0007\u001b]0;x\u0007\ud83d\ude00';
      const { body } = await client.reply(client.request(purchase(), { correlationId }));
      expect(body).toMatchObject({ status: 'confirmed' });
    });

    it('counts as failed, and acks, a message with replyTo but no correlationId', async () => {
      const failedBefore = await replies('failed');
      const body = purchase();
      await world.publish([body], { replyTo: 'amq.rabbitmq.reply-to.x' });
      await waitFor('the reply counted failed', async () => (await replies('failed')) === failedBefore + 1);
      await waitFor('the queue to be empty', async () => (await world.queueDepth()) === 0);
      expect(await world.count('SELECT count(*) FROM orders WHERE user_id = $1', [body.userId])).toBe(1);
    });
  });

  it('has replied exactly once to each request it was sent', () => {
    for (const [id, received] of client.replies)
      expect({ id, replies: received.length }).toEqual({ id, replies: 1 });
  });
});
