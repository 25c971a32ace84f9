/**
 * The per-message design the worker is compared with: one `INSERT … ON CONFLICT DO NOTHING` and one ack
 * per message, the worker's prefetch and pool size, messages handled concurrently as they arrive.
 * Poison is rejected to the queue's dead-letter target. Prints `{"event":"ready"}` once consuming.
 */
import amqp, { type ConsumeMessage } from 'amqplib';
import { Command } from 'commander';
import pg from 'pg';
import { decodePurchase } from '@flashsale/contract';
import { wholeNumber } from '../loadtest.js';

const INSERT_ORDER = `INSERT INTO orders (sale_id, user_id, purchased_at) VALUES ($1, $2, $3)
  ON CONFLICT (sale_id, user_id) DO NOTHING`;

async function main(): Promise<void> {
  const flags = new Command('per-message-consumer')
    .requiredOption('--url <url>', 'broker URL')
    .requiredOption('--queue <name>', 'queue to consume')
    .requiredOption('--database-url <url>', 'database holding orders')
    .option('--prefetch <n>', 'per-consumer prefetch', wholeNumber('--prefetch'), 1000)
    .option('--pool-size <n>', 'PostgreSQL connections', wholeNumber('--pool-size'), 4)
    .option('--max-message-bytes <n>', 'largest body accepted', wholeNumber('--max-message-bytes'), 16 * 1024)
    .parse()
    .opts<{
      url: string;
      queue: string;
      databaseUrl: string;
      prefetch: number;
      poolSize: number;
      maxMessageBytes: number;
    }>();
  const sql = new pg.Pool({
    connectionString: flags.databaseUrl,
    max: flags.poolSize,
    connectionTimeoutMillis: 5000,
  });
  const connection = await amqp.connect(flags.url);
  const channel = await connection.createChannel();
  await channel.prefetch(flags.prefetch);

  const handle = async (message: ConsumeMessage) => {
    const parsed = decodePurchase(message.content, {
      contentType: message.properties.contentType as string | undefined,
      maxBytes: flags.maxMessageBytes,
    });
    if (!parsed.ok) {
      channel.nack(message, false, false);
      return;
    }
    const { saleId, userId, timestamp } = parsed.purchase;
    try {
      await sql.query(INSERT_ORDER, [saleId, userId, timestamp]);
      channel.ack(message);
    } catch (error) {
      process.stderr.write(`insert failed, requeued: ${(error as Error).message}\n`);
      channel.nack(message, false, true);
    }
  };
  await channel.consume(flags.queue, (message) => {
    if (message) void handle(message);
  });
  process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`);
  process.once('SIGTERM', () => {
    void connection
      .close()
      .then(() => sql.end())
      .finally(() => process.exit(0));
  });
}

main().catch((error: Error) => {
  process.stderr.write(`per-message consumer failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
