import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodePurchase } from '@flashsale/contract';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { TEST_RABBITMQ_URL, uniqueName } from './support/harness.js';

/**
 * The packages as an API gets them: `npm pack` of each, installed from the tarballs into an empty project
 * outside the workspace, then used from there by a plain `node` script against the real broker. The
 * tarballs are packed from the built dist (`npm run build:packages`, part of `npm run build`); packing
 * does not rebuild (`--ignore-scripts`), so that no worker process of another test reads a dist being
 * rewritten.
 */
const ROOT = resolve(import.meta.dirname, '..');
const run = promisify(execFile);
const SALE_ID = '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11';

interface PackResult {
  filename: string;
  files: { path: string }[];
}

/** npm from PATH (scripts/node24 puts its Node 24 first), quiet. */
function npm(args: string[], cwd: string) {
  return run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd,
    env: { ...process.env, npm_config_update_notifier: 'false' },
    maxBuffer: 16 * 1024 * 1024,
  });
}

async function pack(packageDir: string, destination: string): Promise<PackResult> {
  const dist = join(ROOT, packageDir, 'dist', 'index.js');
  if (!existsSync(dist)) throw new Error(`${dist} is missing: run \`npm run build:packages\` first`);
  const { stdout } = await npm(
    ['pack', '--json', '--ignore-scripts', '--pack-destination', destination],
    join(ROOT, packageDir),
  );
  const [result] = JSON.parse(stdout) as PackResult[];
  if (!result) throw new Error(`npm pack in ${packageDir} reported nothing: ${stdout}`);
  return result;
}

const PUBLISH_SCRIPT = `
import { PurchasePublisher } from '@flashsale/publisher';
import { DEFAULT_PURCHASE_QUEUE } from '@flashsale/contract';
const publisher = new PurchasePublisher({ url: process.env.RABBITMQ_URL, queue: process.env.QUEUE }).start();
await publisher.publish(
  { saleId: '${SALE_ID}', userId: 'packed-user', timestamp: new Date('2026-11-22T10:00:00.000Z') },
  { messageId: 'packed-1' },
);
await publisher.close();
let nest;
try {
  await import('@flashsale/publisher/nest');
  nest = 'loaded';
} catch (error) {
  nest = error.code;
}
console.log(JSON.stringify({ defaultQueue: DEFAULT_PURCHASE_QUEUE, nest }));
`;

// Type-checked against the installed declarations; the @ts-expect-error line fails the check if the
// packages' types were missing (everything \`any\`).
const CONSUMER_TS = `
import { decodePurchase, type Purchase } from '@flashsale/contract';
import { PurchasePublisher, PurchaseRejectedError, type PurchaseOutcome } from '@flashsale/publisher';
const publisher = new PurchasePublisher({ url: 'amqp://127.0.0.1', queue: 'purchase' });
export const outcome: Promise<PurchaseOutcome> = publisher.request({ saleId: 'x', userId: 'u', timestamp: new Date() });
const decoded = decodePurchase(Buffer.from('{}'));
export const purchase: Purchase | undefined = decoded.ok ? decoded.purchase : undefined;
export const code: string | undefined = decoded.ok ? undefined : decoded.rejection.code;
// @ts-expect-error userId must be a string
export const wrong = publisher.publish({ saleId: 'x', userId: 42, timestamp: new Date() });
export { PurchaseRejectedError };
`;

describe('the packed packages, installed into an empty project', () => {
  let work: string;
  let project: string;
  let contract: PackResult;
  let publisher: PackResult;
  let connection: ChannelModel;
  let channel: Channel;
  const queue = uniqueName('fsw.packed');

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'fsw-packages-'));
    project = join(work, 'api');
    contract = await pack('packages/contract', work);
    publisher = await pack('packages/publisher', work);
    await run('mkdir', [project]);
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: 'packed-api', version: '1.0.0', private: true, type: 'module' }),
    );
    // From the registry through npm's cache (the workspace installed the same versions already).
    await npm(
      ['install', '--prefer-offline', join(work, contract.filename), join(work, publisher.filename)],
      project,
    );
    connection = await amqp.connect(TEST_RABBITMQ_URL);
    channel = await connection.createChannel();
    await channel.assertQueue(queue, { durable: true });
  }, 120_000);

  afterAll(async () => {
    await channel?.deleteQueue(queue);
    await connection?.close();
    await rm(work, { recursive: true, force: true });
  });

  it.each([
    ['contract', () => contract],
    ['publisher', () => publisher],
  ])(
    'packs the %s with its dist JS and declarations, README and package.json, and nothing else',
    (_name, packed) => {
      const paths = packed().files.map((file) => file.path);
      expect(paths).toEqual(
        expect.arrayContaining(['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts']),
      );
      const unexpected = paths.filter(
        (path) => !['package.json', 'README.md'].includes(path) && !/^dist\/[\w/.-]+\.(js|d\.ts)$/.test(path),
      );
      expect(unexpected).toEqual([]);
      expect(paths.filter((path) => /spec|test|\.ts$(?<!\.d\.ts)/.test(path))).toEqual([]);
    },
  );

  it('packs the Nest entry of the publisher', () => {
    const paths = publisher.files.map((file) => file.path);
    expect(paths).toEqual(expect.arrayContaining(['dist/nest/index.js', 'dist/nest/index.d.ts']));
  });

  it('installs the publisher with its contract from the tarballs, no workspace link', async () => {
    const installed = JSON.parse(
      await readFile(join(project, 'node_modules/@flashsale/contract/package.json'), 'utf8'),
    ) as { version: string };
    expect(installed.version).toBe('0.1.0');
    expect(existsSync(join(project, 'node_modules/@flashsale/publisher/dist/index.js'))).toBe(true);
    // NestJS is an optional peer: the core entry works without it.
    expect(existsSync(join(project, 'node_modules/@nestjs/common'))).toBe(false);
  });

  it('publishes a purchase from a plain node script, read back from the queue as the worker reads it', async () => {
    await writeFile(join(project, 'publish.mjs'), PUBLISH_SCRIPT);
    const { stdout } = await run(process.execPath, ['publish.mjs'], {
      cwd: project,
      env: { ...process.env, RABBITMQ_URL: TEST_RABBITMQ_URL, QUEUE: queue },
    });
    expect(JSON.parse(stdout)).toEqual({ defaultQueue: 'purchase', nest: 'ERR_MODULE_NOT_FOUND' });

    const message = await channel.get(queue, { noAck: true });
    if (!message) throw new Error(`nothing in ${queue}`);
    expect(message.properties).toMatchObject({
      messageId: 'packed-1',
      contentType: 'application/json',
      deliveryMode: 2,
    });
    expect(decodePurchase(message.content)).toEqual({
      ok: true,
      purchase: { saleId: SALE_ID, userId: 'packed-user', timestamp: new Date('2026-11-22T10:00:00.000Z') },
    });
  });

  it('type-checks an API written against the installed declarations', async () => {
    await writeFile(join(project, 'consumer.ts'), CONSUMER_TS);
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    // skipLibCheck: the packages' declarations are checked where they are built; here, that they resolve.
    const flags = ['--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--target', 'es2024'];
    const types = ['--typeRoots', join(ROOT, 'node_modules', '@types'), '--types', 'node'];
    await expect(
      run(process.execPath, [tsc, ...flags, ...types, 'consumer.ts'], { cwd: project }),
    ).resolves.toEqual(expect.objectContaining({ stdout: '' }));
  }, 60_000);
});
