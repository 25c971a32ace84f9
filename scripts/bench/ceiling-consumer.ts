/**
 * The ceiling of the bench: a bare amqplib consumer with the worker's prefetch that acks every message
 * without touching a database. Whatever the worker does on top costs throughput against this.
 * Talks to the bench through JSON lines on stdout: `ready`, then `done` once `--expect` messages are acked.
 * The first `--skip` messages (a warm-up) are acked but left out of the figures.
 */
import amqp from 'amqplib';
import { Command } from 'commander';
import { wholeNumber } from '../loadtest.js';
import { percentiles } from './latency.js';

const TIMESTAMP_FIELD = Buffer.from('"timestamp":"');

/** Publish→ack latency from the body's timestamp, read without parsing the JSON (the ceiling stays bare). */
function latencyMs(body: Buffer, now: number): number | undefined {
  const start = body.indexOf(TIMESTAMP_FIELD);
  if (start < 0) return undefined;
  const from = start + TIMESTAMP_FIELD.length;
  const publishedAt = Date.parse(body.toString('latin1', from, body.indexOf(0x22, from)));
  return Number.isNaN(publishedAt) ? undefined : now - publishedAt;
}

async function main(): Promise<void> {
  const flags = new Command('ceiling-consumer')
    .requiredOption('--url <url>', 'broker URL')
    .requiredOption('--queue <name>', 'queue to consume')
    .option('--prefetch <n>', 'per-consumer prefetch', wholeNumber('--prefetch'), 1000)
    .requiredOption('--expect <n>', 'messages to ack before reporting done', wholeNumber('--expect'))
    .option('--skip <n>', 'first messages left out of the figures', wholeNumber('--skip'), 0)
    .parse()
    .opts<{ url: string; queue: string; prefetch: number; expect: number; skip: number }>();
  const connection = await amqp.connect(flags.url);
  const channel = await connection.createChannel();
  await channel.prefetch(flags.prefetch);
  const latencies: number[] = [];
  const ackTimes: number[] = [];
  let acked = 0;
  let skipped = 0;
  const report = () => {
    // The same measure as the orders table gives the others: from the 10th to the 90th percent acked.
    const steadyWindow = {
      fromMs: ackTimes[Math.floor(acked * 0.1)],
      toMs: ackTimes[Math.ceil(acked * 0.9) - 1],
    };
    const done = {
      event: 'done',
      acked,
      firstAckAt: ackTimes[0],
      lastAckAt: ackTimes.at(-1),
      steadyWindow,
      latencyMs: percentiles(latencies),
    };
    process.stdout.write(`${JSON.stringify(done)}\n`);
  };
  await channel.consume(flags.queue, (message) => {
    if (!message) return;
    channel.ack(message);
    if (skipped < flags.skip) {
      skipped += 1;
      return;
    }
    const now = Date.now();
    const latency = latencyMs(message.content, now);
    if (latency !== undefined) latencies.push(latency);
    ackTimes.push(now);
    acked += 1;
    if (acked === flags.expect - flags.skip) report();
  });
  process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`);
  process.once('SIGTERM', () => {
    void connection.close().finally(() => process.exit(0));
  });
}

main().catch((error: Error) => {
  process.stderr.write(`ceiling consumer failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
