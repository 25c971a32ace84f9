import { Command } from 'commander';
import { settingsSchema } from './config/settings.js';
import { BUILD_INFO } from './observability/build-info.js';

/**
 * The worker's command line: `--help` and `--version` answer and exit; anything else is refused (exit 1).
 * Everything the worker does is configured by environment variables, listed in the help.
 */
export function readCommandLine(argv: readonly string[] = process.argv): void {
  const settings = Object.keys(settingsSchema.in.shape);
  new Command('flashsale-worker')
    .description(
      'Consumes purchase messages from RabbitMQ and writes exactly one order each to PostgreSQL.\n' +
        'Serves /health, /ready and /metrics on HTTP_PORT; drains and exits 0 on SIGTERM or SIGINT.',
    )
    .version(`${BUILD_INFO.version} (Node ${BUILD_INFO.node})`, '-v, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .addHelpText(
      'after',
      [
        '',
        'Settings (environment variables; README "Settings" has each default and meaning):',
        ...wrap(settings, 100).map((line) => `  ${line}`),
        '',
        'Exit codes: 0 drained in time, 1 failed or shutdown deadline passed, 78 invalid settings.',
      ].join('\n'),
    )
    .allowExcessArguments(false)
    .parse([...argv]);
}

/** The names, comma-separated, in lines of at most `width` characters. */
function wrap(names: string[], width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const name of names) {
    const next = line ? `${line}, ${name}` : name;
    if (next.length > width && line) {
      lines.push(`${line},`);
      line = name;
    } else {
      line = next;
    }
  }
  if (line) lines.push(line);
  return lines;
}
