/**
 * The bytes a NestJS API's ClientRMQ publishes (node_modules/@nestjs/microservices/client/client-rmq.js):
 * `emit` sends JSON.stringify({pattern, data}) with no content type; `send` assigns an `id` to the packet
 * before serialising it and adds `replyTo` and `correlationId`. The worker reads `data` as the purchase when
 * the pattern is PURCHASE_PATTERN, and dead-letters any other pattern with the original bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { GetMessage } from 'amqplib';
import { randomUUID } from 'node:crypto';
import type { TestWorker } from './support/test-worker.js';
import { waitFor } from './support/harness.js';
import { purchase, type PurchaseBody, TestWorld } from './support/test-worker.js';

const emitted = (data: unknown, pattern: unknown = 'purchase') =>
  Buffer.from(JSON.stringify({ pattern, data }));
const sent = (data: unknown, id: string, pattern = 'purchase') =>
  Buffer.from(JSON.stringify({ pattern, data, id }));
// What no header may carry: NUL, other controls, bidi overrides, lone surrogates.
const UNSAFE = /[\p{Cc}\u202A-\u202E\u2066-\u2069]|\p{Cs}/u;

async function userIdsOfSale(world: TestWorld, saleId: string): Promise<string[]> {
  const { rows } = await world.sql.query<{ user_id: string }>(
    'SELECT user_id FROM orders WHERE sale_id = $1 ORDER BY user_id',
    [saleId],
  );
  return rows.map((row) => row.user_id);
}

/** Waits for the dead letter published with `messageId`, and checks it is the only one. */
async function deadLetterOf(world: TestWorld, messageId: string): Promise<GetMessage> {
  const collected: GetMessage[] = [];
  await waitFor(`the dead letter of ${messageId}`, async () => {
    collected.push(...(await world.drainDeadLetters()));
    return collected.some((message) => message.properties.messageId === messageId);
  });
  expect(collected.map((message) => String(message.properties.messageId))).toEqual([messageId]);
  return collected[0] as GetMessage;
}

describe('a worker reading the envelope of a NestJS client', () => {
  let world: TestWorld;
  let worker: TestWorker;

  beforeAll(async () => {
    world = await TestWorld.create('nest_envelope');
    worker = await world.startWorker({ BATCH_WAIT_MS: 5, AUDIT_FLUSH_INTERVAL_MS: 20 });
  });
  afterAll(() => world.close());

  const settled = () =>
    waitFor(
      'the worker to settle everything',
      async () => worker.worker.inFlight === 0 && (await world.queueDepth()) === 0,
    );

  it('stores emitted envelopes and plain bodies from the same queue as one order each', async () => {
    const saleId = randomUUID();
    const purchases = Array.from({ length: 20 }, (_, index) => purchase({ saleId, userId: `u-${index}` }));
    const bodies = purchases.map((body, index) =>
      index % 2 ? emitted(body) : Buffer.from(JSON.stringify(body)),
    );
    // As ClientRMQ's emit with `persistent: true`: no content type, no headers.
    await world.publishRaw(bodies, { contentType: undefined });
    await waitFor('every order', async () => (await userIdsOfSale(world, saleId)).length === 20);
    await settled();
    expect(await userIdsOfSale(world, saleId)).toEqual(purchases.map((body) => body.userId).sort());
    expect(await world.drainDeadLetters()).toEqual([]);
  });

  it('stores a sent envelope, with its id, reply-to and correlation id', async () => {
    const saleId = randomUUID();
    const replyQueue = `${world.queue}.replies`;
    const channel = await world.openChannel();
    try {
      await channel.assertQueue(replyQueue, { exclusive: true });
      await world.publishRaw([sent(purchase({ saleId, userId: 'sender' }), randomUUID())], {
        contentType: undefined,
        replyTo: replyQueue,
        correlationId: randomUUID(),
      });
      await waitFor('the order', async () => (await userIdsOfSale(world, saleId)).length === 1);
      await settled();
      expect(await userIdsOfSale(world, saleId)).toEqual(['sender']);
    } finally {
      await channel.close();
    }
  });

  it('counts a purchase sent twice, once as an envelope and once plain, as one order', async () => {
    const body: PurchaseBody = purchase({ saleId: randomUUID() });
    await world.publishRaw([emitted(body), Buffer.from(JSON.stringify(body))], { contentType: undefined });
    await waitFor('the order', async () => (await userIdsOfSale(world, body.saleId)).length === 1);
    await settled();
    expect(await userIdsOfSale(world, body.saleId)).toEqual([body.userId]);
    expect(await world.drainDeadLetters()).toEqual([]);
  });

  // [case, body, code, the exact x-rejection-reason]
  // prettier-ignore
  const poison: [string, Buffer, string, string][] = [
    ['another pattern', emitted(purchase(), 'refund'), 'UNKNOWN_PATTERN', 'envelope pattern is "refund", expected "purchase"'],
    ['a pattern with NUL and escape characters', emitted(purchase(), 'a\u0000b\u001b[2J\u202e'), 'UNKNOWN_PATTERN', 'envelope pattern is "a\uFFFDb\uFFFD[2J\uFFFD", expected "purchase"'],
    ['a pattern of 5000 characters', emitted(purchase(), 'p'.repeat(5000)), 'UNKNOWN_PATTERN', `envelope pattern is "${'p'.repeat(99)}…", expected "purchase"`],
    ['an object pattern', emitted(purchase(), { cmd: 'purchase' }), 'UNKNOWN_PATTERN', 'envelope pattern is an object, expected the string "purchase"'],
    ['string data', emitted('purchase'), 'NOT_AN_OBJECT', 'envelope data is a string, expected a JSON object'],
    ['data without a saleId', emitted({ userId: 'u', timestamp: new Date().toISOString() }), 'INVALID_FIELDS', 'data.saleId is required'],
    ['an envelope over MAX_MESSAGE_BYTES', emitted({ ...purchase(), pad: 'x'.repeat(20_000) }), 'BODY_TOO_LARGE', 'over the limit of 16384 bytes'],
  ];

  it.each(poison)(
    'dead-letters an envelope with %s, the body byte for byte',
    async (_case, body, code, reason) => {
      const messageId = randomUUID();
      const ordersBefore = await world.orders();
      await world.publishRaw([body], { contentType: undefined, messageId });
      const deadLetter = await deadLetterOf(world, messageId);
      await settled();
      expect(deadLetter.content.equals(body)).toBe(true);
      expect(deadLetter.properties.contentType).toBeUndefined();
      const headers = deadLetter.properties.headers ?? {};
      expect(headers['x-rejection-code']).toBe(code);
      expect(String(headers['x-rejection-reason'])).toContain(reason);
      expect(String(headers['x-rejection-reason'])).not.toMatch(UNSAFE);
      expect(await world.orders()).toBe(ordersBefore);
    },
  );
});

describe('a worker with its own PURCHASE_PATTERN', () => {
  let world: TestWorld;

  beforeAll(async () => {
    world = await TestWorld.create('nest_pattern');
    await world.startWorker({ PURCHASE_PATTERN: 'flash.purchase', BATCH_WAIT_MS: 5 });
  });
  afterAll(() => world.close());

  it('stores the envelopes of that pattern and dead-letters those of the default one', async () => {
    const saleId = randomUUID();
    const messageId = randomUUID();
    await world.publishRaw([emitted(purchase({ saleId, userId: 'mine' }), 'flash.purchase')], {
      contentType: undefined,
    });
    await world.publishRaw([emitted(purchase({ saleId, userId: 'default' }))], {
      contentType: undefined,
      messageId,
    });
    const deadLetter = await deadLetterOf(world, messageId);
    expect(deadLetter.properties.headers?.['x-rejection-reason']).toBe(
      'envelope pattern is "purchase", expected "flash.purchase"',
    );
    await waitFor('the order', async () => (await userIdsOfSale(world, saleId)).length === 1);
    expect(await userIdsOfSale(world, saleId)).toEqual(['mine']);
  });
});
