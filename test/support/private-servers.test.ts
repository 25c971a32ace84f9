import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import amqp from 'amqplib';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { waitFor } from './harness.js';
import { PrivatePostgres } from './private-postgres.js';
import { PrivateRabbitMq } from './private-rabbitmq.js';

const QUEUE = 'fsw.private-servers';

/** The pid of a process that has already exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

async function withChannel<T>(url: string, use: (channel: amqp.ConfirmChannel) => Promise<T>): Promise<T> {
  const connection = await amqp.connect(url);
  try {
    return await use(await connection.createConfirmChannel());
  } finally {
    await connection.close();
  }
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

describe('PrivateRabbitMq', () => {
  let broker: PrivateRabbitMq;

  beforeAll(async () => {
    broker = await PrivateRabbitMq.start();
  }, 90_000);

  afterAll(async () => {
    await broker?.destroy();
  }, 90_000);

  it('serves AMQP on its own port, not the shared 5672', async () => {
    expect(broker.port).not.toBe(5672);
    const depth = await withChannel(broker.url, async (channel) => {
      await channel.assertQueue(QUEUE, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      channel.sendToQueue(QUEUE, Buffer.from('{"kept":true}'), { persistent: true });
      await channel.waitForConfirms();
      return (await channel.checkQueue(QUEUE)).messageCount;
    });
    expect(depth).toBe(1);
  });

  it('keeps durable queues and persistent messages across a restart', async () => {
    await broker.restart();
    const message = await withChannel(broker.url, (channel) => channel.get(QUEUE, { noAck: true }));
    expect(message && message.content.toString()).toBe('{"kept":true}');
  }, 90_000);

  it('refuses connections while stopped and serves again once started', async () => {
    await broker.stop();
    expect(broker.isRunning).toBe(false);
    await expect(amqp.connect(broker.url)).rejects.toThrow(/ECONNREFUSED/);
    await broker.start();
    const depth = await withChannel(
      broker.url,
      async (channel) => (await channel.checkQueue(QUEUE)).messageCount,
    );
    expect(depth).toBe(0);
  }, 90_000);

  it('stops a node left by a dead test process when the next one starts, and destroy removes its directory', async () => {
    const orphan = await PrivateRabbitMq.start();
    await writeFile(join(orphan.directory, 'owner.pid'), String(await deadPid()));
    const next = await PrivateRabbitMq.start();
    expect(existsSync(orphan.directory)).toBe(false);
    await expect(amqp.connect(orphan.url)).rejects.toThrow(/ECONNREFUSED/);
    expect(existsSync(next.directory)).toBe(true);
    await next.destroy();
    expect(existsSync(next.directory)).toBe(false);
    await expect(amqp.connect(next.url)).rejects.toThrow(/ECONNREFUSED/);
  }, 90_000);
});

describe('PrivatePostgres', () => {
  let server: PrivatePostgres;

  beforeAll(async () => {
    server = await PrivatePostgres.start();
  }, 60_000);

  afterAll(async () => {
    await server?.destroy();
  }, 60_000);

  it('serves SQL on its own port, not the shared 5432', async () => {
    expect(server.port).not.toBe(5432);
    await withClient(server.url(), async (client) => {
      await client.query('CREATE TABLE kept (value text)');
      await client.query(`INSERT INTO kept VALUES ('survives')`);
    });
    const port = await withClient(
      server.url(),
      async (client) => (await client.query<{ port: string }>('SHOW port')).rows[0],
    );
    expect(port).toEqual({ port: String(server.port) });
  });

  it('keeps committed rows across a restart on the same port', async () => {
    await server.restart();
    const rows = await withClient(
      server.url(),
      async (client) => (await client.query<{ value: string }>('SELECT value FROM kept')).rows,
    );
    expect(rows).toEqual([{ value: 'survives' }]);
  }, 60_000);

  it('ends open sessions when stopped, and serves again once started', async () => {
    const client = new pg.Client({ connectionString: server.url() });
    const errors: Error[] = [];
    client.on('error', (error) => errors.push(error));
    await client.connect();
    await server.stop();
    await waitFor('the open session to be ended', () => errors.length > 0);
    expect(errors[0]?.message).toMatch(/terminat/i);
    await expect(withClient(server.url(), (other) => other.query('SELECT 1'))).rejects.toThrow(
      /ECONNREFUSED/,
    );
    await server.start();
    const value = await withClient(
      server.url(),
      async (other) => (await other.query<{ one: number }>('SELECT 1 AS one')).rows,
    );
    expect(value).toEqual([{ one: 1 }]);
  }, 60_000);

  it('stops a server left by a dead test process when the next one starts, and destroy removes its directory', async () => {
    const orphan = await PrivatePostgres.start();
    await writeFile(join(orphan.directory, 'owner.pid'), String(await deadPid()));
    const next = await PrivatePostgres.start();
    expect(existsSync(orphan.directory)).toBe(false);
    await expect(withClient(orphan.url(), (client) => client.query('SELECT 1'))).rejects.toThrow(
      /ECONNREFUSED/,
    );
    expect(existsSync(next.directory)).toBe(true);
    await next.destroy();
    expect(existsSync(next.directory)).toBe(false);
    await expect(withClient(next.url(), (client) => client.query('SELECT 1'))).rejects.toThrow(
      /ECONNREFUSED/,
    );
  }, 60_000);
});
