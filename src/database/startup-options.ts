import { CONTROL } from './url-parameter.js';

// Server settings the worker sets itself: set in `options`, they would be overridden without a word.
const SET_BY_WORKER: Record<string, string> = {
  search_path: 'write schema=',
  statement_timeout: 'set DB_STATEMENT_TIMEOUT_MS',
  idle_in_transaction_session_timeout: 'set DB_STATEMENT_TIMEOUT_MS',
  application_name: 'write application_name=',
};

/** PostgreSQL's `options`: the URL's own, then the schema as `search_path` (quoted, escaped as options are). */
export function startupOptions(options: string | undefined, schema: string | undefined, problems: string[]) {
  if (options !== undefined) {
    if (CONTROL.test(options) || Buffer.byteLength(options) > 4096) {
      problems.push('options: at most 4096 bytes without control characters');
      return undefined;
    }
    for (const setting of optionSettings(options)) {
      const instead = SET_BY_WORKER[setting];
      if (instead) problems.push(`options sets ${setting}, which the worker sets itself: ${instead}`);
    }
  }
  const searchPath =
    schema === undefined ? undefined : `-c search_path=${escapeOption(quoteIdentifier(schema))}`;
  return [options?.trim(), searchPath].filter(Boolean).join(' ') || undefined;
}

/** The names of the settings an `options` string sets (`-c name=value`, `-cname=value`, `--name=value`). */
export function optionSettings(options: string): string[] {
  const args = splitOptions(options);
  const settings: string[] = [];
  args.forEach((arg, index) => {
    const assignment = arg === '-c' ? args[index + 1] : /^-c|^--/.test(arg) ? arg.slice(2) : undefined;
    if (assignment) settings.push((assignment.split('=')[0] ?? '').toLowerCase().replaceAll('-', '_'));
  });
  return settings;
}

/** Splits `options` as PostgreSQL does (pg_split_opts): at whitespace, a backslash escaping the next character. */
function splitOptions(options: string): string[] {
  const args: string[] = [];
  let current: string | undefined;
  for (let index = 0; index < options.length; index++) {
    const char = options[index] ?? '';
    if (/\s/.test(char)) {
      if (current !== undefined) args.push(current);
      current = undefined;
    } else if (char === '\\') current = (current ?? '') + (options[++index] ?? '');
    else current = (current ?? '') + char;
  }
  if (current !== undefined) args.push(current);
  return args;
}

/** A PostgreSQL identifier in double quotes, its quotes doubled. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A value escaped for PostgreSQL's `options` (backslash before whitespace and backslashes). */
function escapeOption(value: string): string {
  return value.replace(/[\s\\]/g, (char) => `\\${char}`);
}
