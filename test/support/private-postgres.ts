import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as privateServer from './private-server.js';

const POSTGRES_LIB = '/usr/lib/postgresql';

/** The newest PostgreSQL installed from Debian's or Ubuntu's packages (15 on Debian 12, 16 on Ubuntu 24.04). */
function newestPostgresBin(): string {
  const versions = existsSync(POSTGRES_LIB)
    ? readdirSync(POSTGRES_LIB).filter(
        (entry) => /^\d+$/.test(entry) && existsSync(join(POSTGRES_LIB, entry, 'bin/initdb')),
      )
    : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0] ?? '15';
  return join(POSTGRES_LIB, newest, 'bin');
}

const POSTGRES_BIN = newestPostgresBin();
const START_TIMEOUT_S = 30;

/** A PostgreSQL start or stop that failed; the message carries the tail of the server's log. */
export class PrivatePostgresError extends privateServer.PrivateServerError {
  override readonly name = 'PrivatePostgresError';
}

/** Immediate shutdown (SIGQUIT) of the postmaster on `dataDirectory`, if one runs. */
async function shutDownImmediately(dataDirectory: string): Promise<void> {
  const postmaster = await privateServer.livePidOf(
    join(dataDirectory, 'postmaster.pid'),
    dataDirectory,
    'cmdline',
  );
  await privateServer.signalAndWait(postmaster, 'SIGQUIT');
}

const POSTGRES_KIND: privateServer.PrivateServerKind = {
  name: 'PrivatePostgres',
  user: 'postgres',
  directoryPrefix: 'fsw-postgres-',
  stopLeftover: (directory) => shutDownImmediately(join(directory, 'data')),
};

/**
 * A PostgreSQL server of its own (the newest version installed; own port, data directory and socket directory
 * in a temp dir, trust auth for `postgres`) that a test may stop and start at will without touching the shared
 * server on 5432.
 */
export class PrivatePostgres extends privateServer.PrivateServer {
  private running = false;

  static async start(): Promise<PrivatePostgres> {
    const directory = await privateServer.createServerDirectory(POSTGRES_KIND);
    const server = new PrivatePostgres(directory, await privateServer.freeLocalPort());
    return server.setUpOrDestroy(async () => {
      await privateServer.handOver(directory, POSTGRES_KIND.user);
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
    });
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
      return await privateServer.runAsUser(POSTGRES_KIND.user, command, args, { cwd: this.directory });
    } catch (error) {
      const { stderr } = error as { stderr?: string };
      throw new PrivatePostgresError(
        `${command} ${args.join(' ')} failed: ${(error as Error).message}\n${stderr ?? ''}\n${await this.logTail()}`,
        { cause: error },
      );
    }
  }

  async logTail(lines = 40): Promise<string> {
    return privateServer.fileTail(this.logFile, lines);
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

  /** Immediate shutdown: no checkpoint, the next start recovers from the WAL. */
  protected async stopByForce(): Promise<void> {
    await shutDownImmediately(this.dataDirectory);
    this.running = false;
  }
}
