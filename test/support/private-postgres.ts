import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';
const DIRECTORY_PREFIX = 'fsw-postgres-';
const START_TIMEOUT_S = 30;
const COMMAND_TIMEOUT_MS = 60_000;

/** A PostgreSQL start or stop that failed; the message carries the tail of the server's log. */
export class PrivatePostgresError extends Error {
  override readonly name = 'PrivatePostgresError';
}

/** A port on 127.0.0.1 that nothing listens on right now. */
async function freeLocalPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('the OS gave no port for port 0');
  return address.port;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits (bounded) until `pid` has exited, so its ports and files are free when this resolves. */
async function waitForExit(pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** The postmaster's pid if it still runs on `dataDirectory` (not a recycled pid). */
async function livePostmasterOf(dataDirectory: string): Promise<number | undefined> {
  const pidFile = await readFile(join(dataDirectory, 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number(pidFile.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const commandLine = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return commandLine.includes(dataDirectory) ? pid : undefined;
}

/** Immediate shutdown (SIGQUIT) of the postmaster on `dataDirectory`, if one runs. */
async function shutDownImmediately(dataDirectory: string): Promise<void> {
  const pid = await livePostmasterOf(dataDirectory);
  if (!pid) return;
  process.kill(pid, 'SIGQUIT');
  await waitForExit(pid);
}

/**
 * Shuts down servers whose test process died without destroying them (a crash, a SIGKILL of Jest) and
 * removes their directories, so leaks on a shared machine end with the next run.
 */
async function reapOrphanedServers(): Promise<void> {
  const entries = await readdir(tmpdir());
  for (const name of entries.filter((entry) => entry.startsWith(DIRECTORY_PREFIX))) {
    const directory = join(tmpdir(), name);
    const owner = Number(await readFile(join(directory, 'owner.pid'), 'utf8').catch(() => ''));
    if (!Number.isInteger(owner) || owner <= 0 || isAlive(owner)) continue;
    await shutDownImmediately(join(directory, 'data'));
    await rm(directory, { recursive: true, force: true });
  }
}

/**
 * A PostgreSQL 15 server of its own (own port, data directory and socket directory in a temp dir, trust auth
 * for `postgres`) that a test may stop and start at will without touching the shared server on 5432.
 */
export class PrivatePostgres {
  private running = false;

  private constructor(
    readonly directory: string,
    readonly port: number,
  ) {}

  static async start(): Promise<PrivatePostgres> {
    await reapOrphanedServers();
    const directory = await mkdtemp(join(tmpdir(), DIRECTORY_PREFIX));
    const server = new PrivatePostgres(directory, await freeLocalPort());
    try {
      await writeFile(join(directory, 'owner.pid'), String(process.pid));
      await execFileAsync('chown', ['postgres:postgres', directory]);
      await server.asPostgres(`${POSTGRES_BIN}/initdb`, [
        '-D',
        server.dataDirectory,
        '-A',
        'trust',
        '-U',
        'postgres',
        '-E',
        'UTF8',
        '--no-sync',
      ]);
      await server.start();
    } catch (error) {
      await server.destroy();
      throw error;
    }
    return server;
  }

  get dataDirectory(): string {
    return join(this.directory, 'data');
  }

  private get logFile(): string {
    return join(this.directory, 'server.log');
  }

  get isRunning(): boolean {
    return this.running;
  }

  url(database = 'postgres'): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${database}`;
  }

  private async asPostgres(command: string, args: string[]): Promise<string> {
    try {
      const { stdout } = await execFileAsync('runuser', ['-u', 'postgres', '--', command, ...args], {
        cwd: this.directory,
        timeout: COMMAND_TIMEOUT_MS,
      });
      return stdout;
    } catch (error) {
      const { stderr } = error as { stderr?: string };
      throw new PrivatePostgresError(
        `${command} ${args.join(' ')} failed: ${(error as Error).message}\n${stderr ?? ''}\n${await this.logTail()}`,
        { cause: error },
      );
    }
  }

  /** The last lines of the server's log, for error messages. */
  async logTail(lines = 40): Promise<string> {
    const log = await readFile(this.logFile, 'utf8').catch(() => '');
    return `--- ${this.logFile} (last ${lines} lines)\n${log.trimEnd().split('\n').slice(-lines).join('\n')}`;
  }

  /** Starts the server on its port and data directory; resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.running) return;
    await this.asPostgres(`${POSTGRES_BIN}/pg_ctl`, [
      '-D',
      this.dataDirectory,
      '-l',
      this.logFile,
      '-w',
      '-t',
      String(START_TIMEOUT_S),
      '-o',
      `-p ${this.port} -k ${this.directory} -c listen_addresses=127.0.0.1`,
      'start',
    ]);
    this.running = true;
  }

  /** Fast shutdown, as an operator's restart does: open sessions are ended, committed data stays. */
  async stop(): Promise<void> {
    if (!this.running) return;
    await this.asPostgres(`${POSTGRES_BIN}/pg_ctl`, ['-D', this.dataDirectory, '-m', 'fast', '-w', 'stop']);
    this.running = false;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops the server (immediately if a fast stop fails) and removes its directory. */
  async destroy(): Promise<void> {
    try {
      await this.stop();
    } catch (error) {
      console.error(`${(error as Error).message}\nshutting it down immediately instead`);
      await shutDownImmediately(this.dataDirectory);
      this.running = false;
    }
    await rm(this.directory, { recursive: true, force: true });
  }
}
