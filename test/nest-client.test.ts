import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Logger } from '@nestjs/common';
import { type ClientProxy, ClientProxyFactory, Transport } from '@nestjs/microservices';
import type { RmqOptions } from '@nestjs/microservices';
import { spawn } from 'node:child_process';
import { lastValueFrom, timeout } from 'rxjs';
import { purchaseTopology } from '../src/broker/topology.js';
import type { TestWorker } from './support/test-worker.js';
import { uniqueName, waitFor } from './support/harness.js';
import { purchase, TestWorld } from './support/test-worker.js';

const REPLY_WAIT_MS = 15_000;

/** A NestJS RMQ client as an API would register it (ClientsModule takes the same options), kept quiet. */
function nestClient(options: RmqOptions['options']): ClientProxy {
  const client = ClientProxyFactory.create({ transport: Transport.RMQ, options });
  const { logger } = client as unknown as { logger: Logger };
  for (const level of ['log', 'error', 'warn'] as const) {
    jest.spyOn(logger, level).mockImplementation(() => undefined);
  }
  return client;
}

describe("NestJS's own RMQ client (ClientProxy) publishing to the worker", () => {
  let world: TestWorld;
  let worker: TestWorker;
  let client: ClientProxy;
  const saleId = '5c0e6b0e-3a41-4c55-9b0a-6f1d2e3c4b5a';

  const ordersOf = (sale: string) => world.count('SELECT count(*) FROM orders WHERE sale_id = $1', [sale]);
  const send = (pattern: string, data: unknown) =>
    lastValueFrom(client.send<Record<string, unknown>>(pattern, data).pipe(timeout(REPLY_WAIT_MS)));

  beforeAll(async () => {
    world = await TestWorld.create('nest');
    worker = await world.startWorker({ BATCH_SIZE: 50, BATCH_WAIT_MS: 5 });
    client = nestClient({ urls: [world.rabbitUrl], queue: world.queue, noAssert: true, persistent: true });
    await client.connect();
  });
  afterAll(async () => {
    await client.close();
    await world.close();
  });

  describe('emit (fire and forget)', () => {
    it('stores one order per unique purchase, acks duplicates, dead-letters poison with its reason', async () => {
      const unique = Array.from({ length: 30 }, () => purchase({ saleId }));
      const duplicates = unique
        .slice(0, 10)
        .map((body) => ({ ...body, timestamp: new Date().toISOString() }));
      const poison = [{ saleId, userId: 'no-timestamp' }, 'not an object', { ...unique[0], saleId: 'x' }];
      const emitted = await Promise.all(
        [...unique, ...duplicates, ...poison].map((data) => lastValueFrom(client.emit('purchase', data))),
      );
      // emit resolves once the broker confirmed the publish (Nest's channel is a confirm channel), with nothing.
      expect(emitted.every((value) => value === undefined)).toBe(true);

      const deadLetters = await world.deadLetters(3);
      await waitFor(
        '30 orders and an empty queue',
        async () => (await ordersOf(saleId)) === 30 && (await world.queueDepth()) === 0,
      );
      expect(
        await world.count('SELECT count(DISTINCT user_id) FROM orders WHERE sale_id = $1', [saleId]),
      ).toBe(30);
      const reasons = deadLetters.map((message) =>
        String(message.properties.headers?.['x-rejection-reason']),
      );
      expect(reasons.sort()).toEqual([
        'data.saleId must be a UUID',
        'data.timestamp is required',
        'envelope data is a string, expected a JSON object',
      ]);
      // The dead-letter copy is Nest's body byte for byte.
      expect(JSON.parse(deadLetters[0]?.content.toString() ?? '')).toHaveProperty('pattern', 'purchase');
    });

    it('dead-letters a pattern that is not the purchase pattern, with a reason naming it', async () => {
      await lastValueFrom(client.emit('order.created', purchase({ saleId })));
      const [dead] = await world.deadLetters(1);
      expect(dead?.properties.headers?.['x-rejection-code']).toBe('UNKNOWN_PATTERN');
      expect(dead?.properties.headers?.['x-rejection-reason']).toBe(
        'envelope pattern is "order.created", expected "purchase"',
      );
    });

    it('sends persistent messages with persistent: true, and transient ones by default', async () => {
      const channel = await world.openChannel();
      const queue = uniqueName('fsw.nest.persistence');
      await channel.assertQueue(queue, { durable: true });
      const transient = nestClient({ urls: [world.rabbitUrl], queue, noAssert: true });
      const persistent = nestClient({ urls: [world.rabbitUrl], queue, noAssert: true, persistent: true });
      try {
        await lastValueFrom(transient.emit('purchase', purchase()));
        await lastValueFrom(persistent.emit('purchase', purchase()));
        const first = await channel.get(queue, { noAck: true });
        const second = await channel.get(queue, { noAck: true });
        expect([first && first.properties.deliveryMode, second && second.properties.deliveryMode]).toEqual([
          1, 2,
        ]);
        // Nor does Nest set a content type: the worker reads a message without one as JSON.
        expect(first && first.properties.contentType).toBeUndefined();
      } finally {
        await Promise.all([transient.close(), persistent.close()]);
        await channel.deleteQueue(queue);
        await channel.close();
      }
    });

    it('with noAssert, resolves an emit to a queue that does not exist: the broker confirms and drops it', async () => {
      const queue = uniqueName('fsw.nest.missing');
      const lost = nestClient({ urls: [world.rabbitUrl], queue, noAssert: true, persistent: true });
      try {
        await expect(lastValueFrom(lost.emit('purchase', purchase()))).resolves.toBeUndefined();
      } finally {
        await lost.close();
      }
      const channel = await world.openChannel();
      channel.on('error', () => undefined); // the passive check below closes the channel
      await expect(channel.checkQueue(queue)).rejects.toThrow('NOT_FOUND');
    });
  });

  describe('send (request-response)', () => {
    it('resolves with the confirmed order, whose id is the row committed', async () => {
      const body = purchase({ saleId });
      const reply = await send('purchase', body);
      const [row] = (
        await world.sql.query<{ id: string; created_at: Date }>(
          'SELECT id, created_at FROM orders WHERE sale_id = $1 AND user_id = $2',
          [saleId, body.userId],
        )
      ).rows;
      expect(reply).toEqual({
        status: 'confirmed',
        orderId: row?.id,
        committedAt: row?.created_at.toISOString(),
        saleId,
        userId: body.userId,
      });
    });

    it('resolves with duplicate and the existing order for a second purchase of the same user', async () => {
      const body = purchase({ saleId });
      const first = await send('purchase', body);
      const second = await send('purchase', { ...body, timestamp: new Date().toISOString() });
      expect(second).toEqual({ ...first, status: 'duplicate' });
    });

    it('answers many requests at once, each with its own order', async () => {
      const bodies = Array.from({ length: 50 }, () => purchase({ saleId }));
      const replies = await Promise.all(bodies.map((body) => send('purchase', body)));
      expect(replies.map((reply) => reply.userId)).toEqual(bodies.map((body) => body.userId));
      expect(new Set(replies.map((reply) => reply.orderId)).size).toBe(50);
    });

    it('errors with the rejection for poison, once it is dead-lettered', async () => {
      await expect(send('purchase', { saleId, userId: 'u' })).rejects.toEqual({
        status: 'rejected',
        code: 'INVALID_FIELDS',
        reason: 'data.timestamp is required',
      });
      await world.deadLetters(1);
    });

    it('errors for a body over MAX_MESSAGE_BYTES too, which the worker does not parse', async () => {
      const rejection = send('purchase', purchase({ userId: 'u'.repeat(20_000) }));
      await expect(rejection).rejects.toMatchObject({
        status: 'rejected',
        code: 'BODY_TOO_LARGE',
        reason: expect.stringContaining('over the limit of'),
      });
      await world.deadLetters(1);
    });

    it('errors naming a pattern that is not the purchase pattern', async () => {
      await expect(send('refund', purchase())).rejects.toEqual({
        status: 'rejected',
        code: 'UNKNOWN_PATTERN',
        reason: 'envelope pattern is "refund", expected "purchase"',
      });
      await world.deadLetters(1);
    });
  });

  describe("declaring the worker's queue", () => {
    it("fails with PRECONDITION_FAILED without noAssert: Nest's default assertQueue does not match a quorum queue", async () => {
      const { code, stderr } = await runNestClient({
        urls: [world.rabbitUrl],
        queue: world.queue,
        persistent: true,
      });
      expect(code).not.toBe(0);
      // The broker names the first argument it finds different (x-queue-type, x-dead-letter-exchange, …).
      expect(stderr).toMatch(/PRECONDITION_FAILED - inequivalent arg 'x-[a-z-]+' for queue/);
    });

    it("works with the worker's queue arguments in queueOptions (x-queue-type quorum and the rest)", async () => {
      const [, purchases] = purchaseTopology(world.settings());
      const declaring = nestClient({
        urls: [world.rabbitUrl],
        queue: world.queue,
        persistent: true,
        queueOptions: purchases?.options,
      });
      try {
        const reply = await lastValueFrom(
          declaring
            .send<Record<string, unknown>>('purchase', purchase({ saleId }))
            .pipe(timeout(REPLY_WAIT_MS)),
        );
        expect(reply).toMatchObject({ status: 'confirmed' });
      } finally {
        await declaring.close();
      }
    });
  });

  it('leaves nothing unsettled', async () => {
    await waitFor(
      'the queue to be empty and nothing in flight',
      async () => (await world.queueDepth()) === 0 && worker.worker.inFlight === 0,
    );
  });
});

/**
 * Connects a NestJS client in a process of its own: the failed declaration is an `error` event on its
 * channel with no listener, which ends the process (as it would end an API's).
 */
function runNestClient(options: RmqOptions['options']): Promise<{ code: number | null; stderr: string }> {
  const script = `
    import { ClientProxyFactory, Transport } from '@nestjs/microservices';
    const client = ClientProxyFactory.create({ transport: Transport.RMQ, options: JSON.parse(process.argv[1]) });
    await client.connect();
    console.log('connected');
    await client.close();`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(options)], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.resume();
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the Nest client process did not end within ${REPLY_WAIT_MS} ms: ${stderr}`));
    }, REPLY_WAIT_MS);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(deadline);
      resolve({ code, stderr });
    });
  });
}
