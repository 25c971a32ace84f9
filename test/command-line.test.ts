import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { settingsSchema } from '../src/config/settings.js';
import { WORKER_NODE_FLAGS } from '../src/node-flags.js';
import { WORKER_MAIN } from './support/worker-process.js';

const PROJECT_ROOT = resolve(import.meta.dirname, '..');

/** The built worker's command line, as an operator meets it: `node dist/src/main.js --help`. */
const run = (...args: string[]) => runWith({}, ...args);

const runWith = (env: NodeJS.ProcessEnv, ...args: string[]) =>
  promisify(execFile)(process.execPath, [WORKER_MAIN, ...args], {
    cwd: PROJECT_ROOT,
    timeout: 10_000,
    // Nothing to connect to: an option that started the worker would fail instead of answering.
    env: {
      ...process.env,
      RABBITMQ_URL: 'amqp://127.0.0.1:1',
      DATABASE_URL: 'postgresql://127.0.0.1:1/x',
      ...env,
    },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );

/** `npm start` and the image's CMD: `node dist/src/start.js`, which runs main.js under the worker's flags. */
const LAUNCHER = resolve(PROJECT_ROOT, 'dist/src/start.js');

/** Preloaded by node, it writes down on stderr, as one JSON line, the process it runs in. */
const PROCESS_PROBE = `data:text/javascript,${encodeURIComponent(
  'process.stderr.write(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, argv: process.argv.slice(1) }) + "\\n")',
)}`;

const { version } = JSON.parse(readFileSync(resolve(PROJECT_ROOT, 'package.json'), 'utf8')) as {
  version: string;
};

describe('the worker command line', () => {
  it.each(['--version', '-v'])(
    'prints the version of package.json and of Node for %s, and exits 0',
    async (flag) => {
      const result = await run(flag);
      expect({ code: result.code, stdout: result.stdout }).toEqual({
        code: 0,
        stdout: `${version} (Node ${process.version})\n`,
      });
    },
  );

  it.each(['--help', '-h'])(
    'prints its usage and every setting it reads for %s, and exits 0',
    async (flag) => {
      const result = await run(flag);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Usage: flashsale-worker \[options\]/);
      for (const setting of Object.keys(settingsSchema.in.shape)) expect(result.stdout).toContain(setting);
    },
  );

  it('refuses a misspelt trace exporter with EX_CONFIG (78) and names it', async () => {
    const result = await runWith({ OTEL_TRACES_EXPORTER: 'otlp,zipkn' });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('OTEL_TRACES_EXPORTER');
    expect(result.stderr).toContain('"zipkn"');
  });

  it('names a hostile exporter escaped, never writing its control characters to the terminal', async () => {
    const result = await runWith({ OTEL_TRACES_EXPORTER: `otlp,\u001b[2J\u202ezipkin${'x'.repeat(50_000)}` });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('OTEL_TRACES_EXPORTER');
    expect(['\u001b', '\u202e'].some((raw) => result.stderr.includes(raw))).toBe(false);
    expect(result.stderr.length).toBeLessThan(2000);
  });

  it('starts through start.js as main.js under the Node flags, in the same process, its options passed on', async () => {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', PROCESS_PROBE, LAUNCHER, '--version'],
      { cwd: PROJECT_ROOT, timeout: 10_000 },
    );
    const [launcher, worker, ...rest] = stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { pid: number; execArgv: string[]; argv: string[] });
    expect(rest).toEqual([]);
    expect(launcher).toEqual({
      pid: expect.any(Number),
      execArgv: ['--import', PROCESS_PROBE],
      argv: [LAUNCHER, '--version'],
    });
    expect(worker).toEqual({
      pid: launcher?.pid,
      execArgv: [...WORKER_NODE_FLAGS, '--import', PROCESS_PROBE],
      argv: [WORKER_MAIN, '--version'],
    });
    expect(stdout).toBe(`${version} (Node ${process.version})\n`);
  });

  it('refuses an unknown option or argument with exit code 1 and says which', async () => {
    const unknownOption = await run('--prefetch=5');
    expect({ code: unknownOption.code, stderr: unknownOption.stderr }).toEqual({
      code: 1,
      stderr: expect.stringContaining("unknown option '--prefetch=5'"),
    });
    const extra = await run('start');
    expect(extra.code).toBe(1);
    expect(extra.stderr).toContain('too many arguments');
  });
});
