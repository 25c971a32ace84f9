import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import amqp, { type ChannelModel } from 'amqplib';
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { EXAMPLE_API_MAIN, ExampleApiProcess } from '../scripts/loadtest/example-api-process.js';
import { TEST_RABBITMQ_URL, uniqueName } from './support/harness.js';
import { freeLocalPort } from './support/private-server.js';

/** The built example API (examples/flash-sale-api/dist/main.js, `npm run build`) as a process: settings, signals. */
function runApi(env: NodeJS.ProcessEnv) {
  return promisify(execFile)(process.execPath, [EXAMPLE_API_MAIN], {
    timeout: 10_000,
    env: { PATH: process.env.PATH, ...env },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

describe('the example API process', () => {
  let connection: ChannelModel;
  const queue = uniqueName('fsw.example_api_process');

  beforeAll(async () => {
    connection = await amqp.connect(TEST_RABBITMQ_URL);
    const channel = await connection.createChannel();
    await channel.assertQueue(queue, { durable: true });
    await channel.close();
  });

  afterAll(async () => {
    const channel = await connection.createChannel();
    await channel.deleteQueue(queue);
    await connection.close();
  });

  it('refuses bad settings with exit code 78, naming each one, never showing a password', async () => {
    const result = await runApi({ HTTP_PORT: 'eighty', RABBITMQ_URL: 'http://admin:s3cret@broker' });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('flash-sale-api cannot start');
    expect(result.stderr).toContain('HTTP_PORT="eighty"');
    expect(result.stderr).toContain('RABBITMQ_URL (value hidden)');
    expect(result.stderr).not.toContain('s3cret');
  });

  it('takes purchases on HTTP_PORT, logs the broker it reached without its password, and on SIGTERM says it is closing and exits', async () => {
    const output = new PassThrough();
    let logged = '';
    output.on('data', (chunk: Buffer) => (logged += chunk.toString()));
    const url = `http://127.0.0.1:${await freeLocalPort()}`;
    const api = await ExampleApiProcess.start({
      url,
      env: { RABBITMQ_URL: TEST_RABBITMQ_URL, PURCHASE_QUEUE: queue },
      output,
    });
    const response = await fetch(`${url}/sales/7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11/purchases`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'user-42' }),
    });
    expect(response.status).toBe(202);
    await api.stop();
    expect(logged).toContain(`listening on port ${new URL(url).port}, publishing to "${queue}"`);
    expect(logged).toContain('closing on SIGTERM: answering the requests in flight');
    const broker = new URL(TEST_RABBITMQ_URL);
    expect(logged).toContain(
      `connected to the broker at ${broker.protocol}//${broker.username}:***@${broker.host}`,
    );
    expect(logged).not.toContain(`${broker.username}:${broker.password}@`);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
    const channel = await connection.createChannel();
    expect((await channel.checkQueue(queue)).messageCount).toBe(1);
    await channel.close();
  });
});
