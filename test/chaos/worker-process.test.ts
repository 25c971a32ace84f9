import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  createTestDatabase,
  deleteWorkerQueues,
  TEST_RABBITMQ_URL,
  type TestDatabase,
  uniqueName,
} from '../support/harness.js';
import { WorkerProcess } from '../support/worker-process.js';

describe('WorkerProcess', () => {
  let database: TestDatabase;
  const queue = uniqueName('fsw.worker-process');
  const started: WorkerProcess[] = [];

  const start = (env: Record<string, string> = {}) => {
    const worker = WorkerProcess.start({
      RABBITMQ_URL: TEST_RABBITMQ_URL,
      DATABASE_URL: database.url,
      PURCHASE_QUEUE: queue,
      LOG_LEVEL: 'info',
      WORKER_ID: uniqueName('worker'),
      ...env,
    });
    started.push(worker);
    return worker;
  };

  beforeAll(async () => {
    database = await createTestDatabase('worker_process');
  });

  afterAll(async () => {
    for (const worker of started) worker.kill('SIGKILL');
    await Promise.all(started.map((worker) => worker.waitForExit(10_000)));
    await deleteWorkerQueues(queue);
    await database.drop();
  });

  it('learns the HTTP port from the log, waits for /ready and reads /metrics', async () => {
    const worker = start();
    await worker.waitUntilReady(30_000);
    expect(worker.port).toBeGreaterThan(0);
    expect(await worker.metrics()).toMatch(/^flashsale_messages_in_flight(\{[^}]*\})? 0$/m);
    expect(worker.logEntries('http listening')).toEqual([
      expect.objectContaining({ msg: 'http listening', port: worker.port }),
    ]);
  });

  it('reports a graceful SIGTERM as exit code 0, and a SIGKILL as the signal', async () => {
    const [graceful, killed] = [start(), start()];
    await Promise.all([graceful.waitUntilReady(30_000), killed.waitUntilReady(30_000)]);
    graceful.sigterm();
    killed.kill('SIGKILL');
    expect(await graceful.waitForExit(20_000)).toEqual({ code: 0, signal: null });
    expect(await killed.waitForExit(5000)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(killed.exitStatus).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('fails waiting for readiness as soon as the worker exits, with its output', async () => {
    const worker = start({ PREFETCH: '0' });
    await expect(worker.waitUntilReady(30_000)).rejects.toThrow(
      /exited before it was ready; it is exited \(code 78, signal null\)[\s\S]*PREFETCH/,
    );
  });

  it('fails waiting for an exit that does not come, naming the worker', async () => {
    const worker = start();
    await expect(worker.waitForExit(200)).rejects.toThrow(`${worker.name} did not exit within 200 ms`);
    expect(worker.exitStatus).toBeUndefined();
  });
});
