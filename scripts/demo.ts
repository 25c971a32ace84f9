import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyMigrations } from '../src/tools/migrate/migrate.js';
import { Fleet } from './fleet.js';
import {
  DEFAULT_API_URL,
  loadTestCommand,
  loadTestOptionsFromFlags,
  runLoadTestFromFlags,
  wholeNumber,
  type LoadTestFlags,
} from './loadtest.js';
import { ExampleApiProcess } from './loadtest/example-api-process.js';

/**
 * The quick start on a real workload: migrations, a fleet of workers, the load test, a graceful stop. With
 * `--http`, the example API runs beside the fleet and the load test goes through it over HTTP.
 * Exits with the load test's code (0 on PASS).
 */
async function main(): Promise<number> {
  const flags = loadTestCommand()
    .name('demo')
    .description(
      'Migrate, start a fleet, run the load test against it, stop the fleet.\n' +
        'With --http, the example API (examples/flash-sale-api) too, on the port of the URL given.',
    )
    .option('--workers <n>', 'workers in the fleet', wholeNumber('--workers'), 3)
    .option('--base-port <port>', 'HTTP port of worker-1, 0 = free ports', wholeNumber('--base-port'), 3001)
    .parse()
    .opts<LoadTestFlags & { workers: number; basePort: number }>();
  const options = loadTestOptionsFromFlags(flags);
  const say = (message: string) => process.stdout.write(`demo | ${message}\n`);

  const applied = await applyMigrations(options.databaseUrl);
  say(applied.length > 0 ? `applied migrations: ${applied.join(', ')}` : 'database schema up to date');

  const logFile = join(tmpdir(), `flashsale-demo-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
  const workerLog = createWriteStream(logFile);
  const fleet = new Fleet({ workers: flags.workers, basePort: flags.basePort, output: workerLog });
  // Never leave workers behind if the demo is interrupted.
  let api: ExampleApiProcess | undefined;
  process.on('exit', () => {
    fleet.kill();
    api?.kill();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void fleet.stop('SIGTERM').then(() => process.exit(130)));
  }
  say(`starting ${flags.workers} workers (logs in ${logFile})`);
  fleet.start();
  let exitCode: number;
  try {
    await fleet.ready(60_000);
    say(`${flags.workers} workers ready`);
    if (flags.http) {
      const url = typeof flags.http === 'string' ? flags.http : DEFAULT_API_URL;
      say(`starting the example API on ${url} (logs in ${logFile})`);
      api = await ExampleApiProcess.start({
        url,
        env: { RABBITMQ_URL: options.rabbitUrl, PURCHASE_QUEUE: options.queue },
        output: workerLog,
      });
      say('example API healthy');
    }
    exitCode = (await runLoadTestFromFlags(flags)) ? 0 : 1;
  } finally {
    if (api) {
      say('stopping the example API');
      await api.stop();
    }
    say('stopping the fleet');
    const fleetCode = await fleet.stop('SIGTERM');
    say(
      fleetCode === 0
        ? 'every worker drained and exited 0'
        : `some workers did not stop cleanly (see ${logFile})`,
    );
    workerLog.end();
  }
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`demo failed: ${error.message}\n`);
    process.exit(1);
  },
);
