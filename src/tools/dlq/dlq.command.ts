import { SingleBar } from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { InvalidSettingsError, parseSettings } from '../../config/settings.js';
import { splitNodeUrls } from '../../common/broker-nodes.js';
import {
  BrokerUnreachableError,
  DeadLetterAdmin,
  type DeadLetterListing,
  type DeadLetterQueues,
  ReplayError,
} from './dead-letter.admin.js';
import { formatListing } from './listing.format.js';

/** Exit codes of `npm run dlq`. */
export const DLQ_EXIT = {
  /** Done as asked. */
  ok: 0,
  /** The broker could not be reached, a queue is missing, or a replay stopped on an unconfirmed publish. */
  failed: 1,
  /** Bad arguments or settings, or a purge without --yes: nothing was done. */
  refused: 2,
} as const;

/** Where the command reads its settings and writes its output; a test passes its own. */
export interface DlqCommandIo {
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** A terminal to draw the replay progress bar on, if any. */
  progressTerminal?: NodeJS.WriteStream;
}

interface GlobalFlags {
  queue?: string;
  dlq?: string;
}

const messages = (count: number) => `${count} message${count === 1 ? '' : 's'}`;

function positiveWholeNumber(value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1)
    throw new InvalidArgumentError('must be a whole number of 1 or more');
  return number;
}

/** Thrown by an action to end the run with an exit code, its message already written. */
class ExitWith extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

/**
 * `dlq list | replay [--limit N] | purge [--yes]` with RABBITMQ_URL, PURCHASE_QUEUE and DEAD_LETTER_QUEUE from
 * the environment (the worker's settings and defaults), `--queue` / `--dlq` overriding the queue names.
 * Resolves with the exit code.
 */
export async function runDlqCommand(args: readonly string[], io: DlqCommandIo): Promise<number> {
  const program = new Command('dlq')
    .description('Inspect, replay and purge the purchase dead-letter queue (see docs/runbook-dlq.md).')
    .option('--queue <name>', 'purchase queue replays go to (default: PURCHASE_QUEUE, else "purchase")')
    .option('--dlq <name>', 'dead-letter queue (default: DEAD_LETTER_QUEUE, else "<queue>.dlq")')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });

  const withAdmin = async (work: (admin: DeadLetterAdmin) => Promise<void>) => {
    const { urls, queues } = resolveTarget(program.opts<GlobalFlags>(), io);
    const admin = await connectToAnyNode(urls, queues);
    try {
      await work(admin);
    } finally {
      await admin.close();
    }
  };

  program
    .command('list')
    .description('count the dead letters per reason and show a few, without taking any off the queue')
    .option('--samples <n>', 'messages to show', positiveWholeNumber, 5)
    .option('--max <n>', 'most messages to look at', positiveWholeNumber, 10_000)
    .option('--json', 'print the listing as JSON')
    .action((flags: { samples: number; max: number; json?: boolean }) =>
      withAdmin(async (admin) => {
        const listing: DeadLetterListing = await admin.list({
          maxMessages: flags.max,
          sampleCount: flags.samples,
        });
        io.stdout(flags.json ? `${JSON.stringify(listing, null, 2)}\n` : formatListing(listing));
      }),
    );

  program
    .command('replay')
    .description(
      'move dead letters back to the purchase queue, each removed from the DLQ only once confirmed',
    )
    .option('--limit <n>', 'replay at most this many (default: all)', positiveWholeNumber)
    .action((flags: { limit?: number }) =>
      withAdmin(async (admin) => {
        const { deadLetterQueue: from, purchaseQueue: to } = admin.queues;
        const limit = flags.limit ?? Number.POSITIVE_INFINITY;
        const bar = io.progressTerminal?.isTTY ? new SingleBar({ stream: io.progressTerminal }) : undefined;
        bar?.start(Math.min(limit, await admin.depth(from)), 0);
        try {
          const result = await admin.replay({ limit, onProgress: (replayed) => bar?.update(replayed) });
          bar?.stop();
          io.stdout(
            `replayed ${result.replayed} of ${messages(result.target)} from ${from} to ${to}; ` +
              `${result.remaining} left in ${from}\n`,
          );
        } catch (error) {
          bar?.stop();
          if (!(error instanceof ReplayError)) throw error;
          io.stderr(`replay stopped: ${error.message}\n`);
          io.stdout(`replayed ${messages(error.replayed)} from ${from} to ${to} before the failure\n`);
          throw new ExitWith(DLQ_EXIT.failed);
        }
      }),
    );

  program
    .command('purge')
    .description('discard every message in the DLQ (needs --yes)')
    .option('--yes', 'really discard them')
    .action((flags: { yes?: boolean }) =>
      withAdmin(async (admin) => {
        const queue = admin.queues.deadLetterQueue;
        io.stdout(`${queue} holds ${messages(await admin.depth(queue))}\n`);
        if (!flags.yes) {
          io.stderr(`refusing to purge ${queue} without --yes: purged messages are gone for good\n`);
          throw new ExitWith(DLQ_EXIT.refused);
        }
        io.stdout(`purged ${messages(await admin.purge())} from ${queue}\n`);
      }),
    );

  try {
    await program.parseAsync([...args], { from: 'user' });
    return DLQ_EXIT.ok;
  } catch (error) {
    return exitCodeOf(error, io);
  }
}

/** The first node of RABBITMQ_URL that answers: on a cluster, any node serves every queue. */
async function connectToAnyNode(urls: string[], queues: DeadLetterQueues): Promise<DeadLetterAdmin> {
  let unreachable: BrokerUnreachableError | undefined;
  for (const url of urls) {
    try {
      return await DeadLetterAdmin.connect(url, queues);
    } catch (error) {
      if (!(error instanceof BrokerUnreachableError)) throw error;
      unreachable = error;
    }
  }
  throw unreachable ?? new BrokerUnreachableError('RABBITMQ_URL names no broker node');
}

function resolveTarget(flags: GlobalFlags, io: DlqCommandIo): { urls: string[]; queues: DeadLetterQueues } {
  const settings = parseSettings({
    RABBITMQ_URL: io.env.RABBITMQ_URL,
    PURCHASE_QUEUE: flags.queue ?? io.env.PURCHASE_QUEUE,
    DEAD_LETTER_QUEUE: flags.dlq ?? io.env.DEAD_LETTER_QUEUE,
  });
  return {
    urls: splitNodeUrls(settings.RABBITMQ_URL),
    queues: { purchaseQueue: settings.PURCHASE_QUEUE, deadLetterQueue: settings.DEAD_LETTER_QUEUE },
  };
}

function exitCodeOf(error: unknown, io: DlqCommandIo): number {
  if (error instanceof ExitWith) return error.exitCode;
  // Commander has written its own message (usage, unknown option) or the help it was asked for.
  if (error instanceof CommanderError) return error.exitCode === 0 ? DLQ_EXIT.ok : DLQ_EXIT.refused;
  if (error instanceof InvalidSettingsError) {
    io.stderr(`${error.message}\n`);
    return DLQ_EXIT.refused;
  }
  io.stderr(`dlq: ${(error as Error).message}\n`);
  return DLQ_EXIT.failed;
}
