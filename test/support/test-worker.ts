import amqp, { type ChannelModel, type ConfirmChannel, type Options } from 'amqplib';
import pg from 'pg';
import { purchaseTopology } from '../../src/broker/topology.js';
import { TopologyDeclarer } from '../../src/broker/topology.declarer.js';
import { parseSettings, type Settings } from '../../src/config/settings.js';
import { register } from 'prom-client';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { Worker } from '../../src/worker.js';
import { startWorker, type RunningWorker } from '../../src/worker.module.js';
import { createTestDatabase, TEST_RABBITMQ_URL, type TestDatabase, uniqueName, waitFor } from './harness.js';

/** A purchase body as the flash-sale API publishes it. */
export interface PurchaseBody {
  saleId: string;
  userId: string;
  timestamp: string;
}

/** A worker started in-process, with what tests look at inside it: its lifecycle, settings, audit buffer. */
export interface TestWorker extends RunningWorker {
  worker: Worker;
  settings: Settings;
  audit: AuditTrail;
}

/**
 * Starts a worker in this process. Its stop also empties prom-client's global registry, where the worker
 * and Nest's Prometheus module register their metrics, so that the next worker of the same test process can
 * register them again (a production process runs one worker and never needs this).
 */
export async function startTestWorker(settings: Settings): Promise<TestWorker> {
  const running = await startWorker(settings);
  return {
    ...running,
    worker: running.app.get(Worker),
    settings,
    audit: running.app.get(AuditTrail),
    stop: async (signal) => {
      try {
        return await running.stop(signal);
      } finally {
        register.clear();
      }
    },
  };
}

/**
 * One test file's world: its own database and queue names on the shared servers, a publisher and
 * helpers to read queues and tables, and workers started in-process against them.
 */
export class TestWorld {
  readonly queue: string;
  readonly deadLetterQueue: string;
  private connection: ChannelModel | undefined;
  private channel: ConfirmChannel | undefined;
  private readonly workers: RunningWorker[] = [];
  readonly sql: pg.Pool;

  private constructor(
    readonly db: TestDatabase,
    readonly rabbitUrl: string,
    prefix: string,
  ) {
    this.queue = uniqueName(`fsw.${prefix}`);
    this.deadLetterQueue = `${this.queue}.dlq`;
    this.sql = new pg.Pool({ connectionString: db.url, max: 2 });
    // Idle clients die with their server when a test stops a private instance; the next query reconnects.
    this.sql.on('error', () => undefined);
  }

  static async create(
    prefix: string,
    rabbitUrl = TEST_RABBITMQ_URL,
    postgresServerUrl?: string,
  ): Promise<TestWorld> {
    const db = await createTestDatabase(prefix, postgresServerUrl);
    return new TestWorld(db, rabbitUrl, prefix);
  }

  /** Settings for a worker of this world; `overrides` use the environment variable names. */
  settings(overrides: Record<string, string | number> = {}): Settings {
    return parseSettings({
      RABBITMQ_URL: this.rabbitUrl,
      DATABASE_URL: this.db.url,
      PURCHASE_QUEUE: this.queue,
      HTTP_PORT: '0',
      // Quiet tests: nestjs-pino keeps one root logger per process, so the first worker's level holds for the
      // whole file. TEST_LOG_LEVEL=error (or debug) shows what the workers say while a test is looked into.
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'fatal',
      SHUTDOWN_DEADLINE_MS: '10000',
      ...Object.fromEntries(Object.entries(overrides).map(([key, value]) => [key, String(value)])),
    });
  }

  async startWorker(overrides: Record<string, string | number> = {}): Promise<TestWorker> {
    const started = await startTestWorker(this.settings(overrides));
    this.workers.push(started);
    await waitFor('the worker to consume', () => started.worker.state === 'consuming');
    return started;
  }

  /** Declares the queues as a worker with these settings would, so messages can wait before any worker runs. */
  async declareTopology(overrides: Record<string, string | number> = {}): Promise<void> {
    await this.publisher();
    await new TopologyDeclarer().apply(
      { connection: this.connection },
      purchaseTopology(this.settings(overrides)),
    );
  }

  async publisher(): Promise<ConfirmChannel> {
    if (!this.channel) {
      this.connection = await amqp.connect(this.rabbitUrl);
      this.channel = await this.connection.createConfirmChannel();
    }
    return this.channel;
  }

  /** Publishes raw bodies to the purchase queue with confirms, persistent, JSON content type by default. */
  async publishRaw(bodies: (string | Buffer)[], options: Options.Publish = {}): Promise<void> {
    const channel = await this.publisher();
    for (const body of bodies) {
      channel.sendToQueue(this.queue, Buffer.isBuffer(body) ? body : Buffer.from(body), {
        persistent: true,
        contentType: 'application/json',
        ...options,
      });
    }
    await channel.waitForConfirms();
  }

  publish(purchases: PurchaseBody[], options: Options.Publish = {}): Promise<void> {
    return this.publishRaw(
      purchases.map((purchase) => JSON.stringify(purchase)),
      options,
    );
  }

  /** A plain channel on this world's connection; the caller closes it. */
  async openChannel(): Promise<amqp.Channel> {
    return (await this.publisherConnection()).createChannel();
  }

  async count(sql: string, params: unknown[] = []): Promise<number> {
    const result = await this.sql.query<{ count: string }>(sql, params);
    return Number(result.rows[0]?.count ?? 0);
  }

  orders(): Promise<number> {
    return this.count('SELECT count(*) FROM orders');
  }

  async queueDepth(queue = this.queue): Promise<number> {
    const channel = await (await this.publisherConnection()).createChannel();
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } finally {
      await channel.close();
    }
  }

  /** Takes every message off the DLQ (acking them) and returns them. */
  async drainDeadLetters(): Promise<amqp.GetMessage[]> {
    const channel = await (await this.publisherConnection()).createChannel();
    const messages: amqp.GetMessage[] = [];
    try {
      for (;;) {
        const message = await channel.get(this.deadLetterQueue, { noAck: true });
        if (!message) return messages;
        messages.push(message);
      }
    } finally {
      await channel.close();
    }
  }

  /** Waits until `expected` messages sit in the DLQ, then takes them off. */
  async deadLetters(expected: number, timeoutMs = 15_000): Promise<amqp.GetMessage[]> {
    const collected: amqp.GetMessage[] = [];
    await waitFor(
      `${expected} dead letters`,
      async () => {
        collected.push(...(await this.drainDeadLetters()));
        return collected.length >= expected;
      },
      { timeoutMs, intervalMs: 100 },
    );
    return collected;
  }

  async close(): Promise<void> {
    for (const worker of this.workers.splice(0)) await worker.stop('test end');
    if (this.connection) {
      const channel = await this.connection.createChannel();
      await channel.deleteQueue(this.queue);
      await channel.deleteQueue(this.deadLetterQueue);
      await this.connection.close();
    }
    await this.sql.end();
    await this.db.drop();
  }

  private async publisherConnection(): Promise<ChannelModel> {
    await this.publisher();
    return this.connection as ChannelModel;
  }
}

let sequence = 0;

/** A valid purchase for a fixed sale; `userId` distinct per call unless given. */
export function purchase(overrides: Partial<PurchaseBody> = {}): PurchaseBody {
  sequence++;
  return {
    saleId: '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11',
    userId: `user-${sequence}`,
    timestamp: new Date().toISOString(),
    ...overrides,
  };
}

/** The sum of a metric's samples on the worker's /metrics whose labels contain `labels`. */
export async function scrapedMetric(worker: RunningWorker, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name) && line.includes(labels) && !line.startsWith('#'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
