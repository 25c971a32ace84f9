import { runDlqCommand } from '../src/tools/dlq/dlq.command.js';

/** `npm run dlq -- list | replay [--limit N] | purge [--yes]`: the operator's dead-letter tool. */
process.exitCode = await runDlqCommand(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  progressTerminal: process.stderr,
});
