import { existsSync, readdirSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { waitFor } from './harness.js';
import { PrivatePostgresError } from './private-postgres.js';
import * as privateServer from './private-server.js';

const POSTGRES_LIB = '/usr/lib/postgresql';
const START_TIMEOUT_S = 30;
const SYNC_TIMEOUT_MS = 30_000;
/** How long the old primary's backends may take to notice their postmaster died before they are killed too. */
const ORPHAN_EXIT_TIMEOUT_MS = 10_000;

/** The newest PostgreSQL installed from Debian's or Ubuntu's packages, as private-postgres.ts picks it. */
function newestPostgresBin(): string {
  const versions = existsSync(POSTGRES_LIB)
    ? readdirSync(POSTGRES_LIB).filter(
        (entry) => /^\d+$/.test(entry) && existsSync(join(POSTGRES_LIB, entry, 'bin/pg_basebackup')),
      )
    : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0] ?? '15';
  return join(POSTGRES_LIB, newest, 'bin');
}

const POSTGRES_BIN = newestPostgresBin();

/** The postmaster running on `dataDirectory`, if one does. */
const postmasterOf = (dataDirectory: string) =>
  privateServer.livePidOf(join(dataDirectory, 'postmaster.pid'), dataDirectory, 'cmdline');

const PAIR_KIND: privateServer.PrivateServerKind = {
  name: 'PrivatePostgresReplica',
  user: 'postgres',
  directoryPrefix: 'fsw-pgpair-',
  stopLeftover: async (directory) => {
    for (const node of ['primary', 'standby']) {
      await privateServer.signalAndWait(await postmasterOf(join(directory, node)), 'SIGQUIT');
    }
  },
};

/** The pids whose parent is `parent` (from /proc/<pid>/stat: the field after the command's closing paren). */
async function childrenOf(parent: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const parentPid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (parentPid === parent) children.push(Number(entry));
  }
  return children;
}

/**
 * Whether `pid` is a running PostgreSQL process: a zombie (exited, not yet reaped, as an orphan may stay in a
 * container) is not, nor a recycled pid now running something else.
 */
async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const command = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return command === 'postgres' && state !== 'Z';
}

async function alive(pids: number[]): Promise<number[]> {
  const states = await Promise.all(pids.map(isAlive));
  return pids.filter((_, index) => states[index]);
}

type NodeState = 'running' | 'killed' | 'stopped';

/** One PostgreSQL node of the pair: its directory, port and whether it runs. */
class PostgresNode {
  state: NodeState = 'stopped';

  constructor(
    readonly name: 'primary' | 'standby',
    readonly directory: string,
    readonly port: number,
  ) {}

  get dataDirectory(): string {
    return join(this.directory, this.name);
  }

  get logFile(): string {
    return join(this.directory, `${this.name}.log`);
  }

  url(database = 'postgres'): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${database}`;
  }
}

/** What the old primary left when it was killed, for the report and the assertions. */
export interface PrimaryKill {
  postmaster: number;
  /** Its child processes (backends, WAL sender, background workers) when it was killed. */
  children: number[];
  killedAtMs: number;
  /** Children still alive after ORPHAN_EXIT_TIMEOUT_MS, killed with SIGKILL then. */
  killedLate: number[];
  /** From the postmaster's SIGKILL until every child had exited, in milliseconds; unset until they have. */
  childrenGoneMs: number | undefined;
}

/**
 * A private PostgreSQL primary with one synchronous hot standby (`pg_basebackup -R -X stream`), each on its
 * own port in one temp directory, trust auth for `postgres`: a failover of a test's own. The primary has
 * `synchronous_standby_names='*'`, so a commit it acknowledged is on the standby too; the standby has none of
 * its own, so once promoted it commits alone.
 */
export class PrivatePostgresReplica {
  private killed: PrimaryKill | undefined;

  private constructor(
    readonly directory: string,
    readonly primary: PostgresNode,
    readonly standby: PostgresNode,
  ) {}

  /** Creates and starts the primary, clones the standby from it, and waits until it replicates synchronously. */
  static async start(): Promise<PrivatePostgresReplica> {
    const directory = await privateServer.createServerDirectory(PAIR_KIND);
    const [primaryPort, standbyPort] = [
      await privateServer.freeLocalPort(),
      await privateServer.freeLocalPort(),
    ];
    const pair = new PrivatePostgresReplica(
      directory,
      new PostgresNode('primary', directory, primaryPort),
      new PostgresNode('standby', directory, standbyPort),
    );
    try {
      await privateServer.handOver(directory, PAIR_KIND.user);
      await pair.asPostgres(`${POSTGRES_BIN}/initdb`, [
        ...['-D', pair.primary.dataDirectory, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'],
      ]);
      await pair.startNode(pair.primary, [
        ...['-c wal_level=replica', '-c max_wal_senders=10', '-c hot_standby=on'],
        "-c synchronous_standby_names='*'",
      ]);
      await pair.asPostgres(`${POSTGRES_BIN}/pg_basebackup`, [
        ...['-h', '127.0.0.1', '-p', String(primaryPort), '-U', 'postgres'],
        ...['-D', pair.standby.dataDirectory, '-R', '-X', 'stream', '--no-sync'],
      ]);
      await pair.startNode(pair.standby, ['-c hot_standby=on', "-c synchronous_standby_names=''"]);
      await pair.waitUntilSynchronous();
    } catch (error) {
      await pair.destroy();
      throw error;
    }
    return pair;
  }

  private async asPostgres(command: string, args: string[]): Promise<string> {
    try {
      return await privateServer.runAsUser(PAIR_KIND.user, command, args, { cwd: this.directory });
    } catch (error) {
      const { stderr } = error as { stderr?: string };
      throw new PrivatePostgresError(
        `${command} ${args.join(' ')} failed: ${(error as Error).message}\n${stderr ?? ''}\n${await this.logTail()}`,
        { cause: error },
      );
    }
  }

  /** The last lines of both servers' logs, for error messages. */
  async logTail(lines = 30): Promise<string> {
    const tails = await Promise.all(
      [this.primary, this.standby].map((node) => privateServer.fileTail(node.logFile, lines)),
    );
    return tails.join('\n');
  }

  private async startNode(node: PostgresNode, settings: string[]): Promise<void> {
    const options = [`-p ${node.port}`, `-k ${this.directory}`, '-c listen_addresses=127.0.0.1', ...settings];
    await this.asPostgres(`${POSTGRES_BIN}/pg_ctl`, [
      ...['-D', node.dataDirectory, '-l', node.logFile, '-w', '-t', String(START_TIMEOUT_S)],
      ...['-o', options.join(' '), 'start'],
    ]);
    node.state = 'running';
  }

  /** Waits until the primary reports its standby as `sync` in pg_stat_replication. */
  async waitUntilSynchronous(): Promise<void> {
    const client = new pg.Client({ connectionString: this.primary.url() });
    await client.connect();
    try {
      await waitFor(
        'the standby to replicate synchronously',
        async () => {
          const { rows } = await client.query<{ sync_state: string }>(
            'SELECT sync_state FROM pg_stat_replication',
          );
          return rows.some((row) => row.sync_state === 'sync');
        },
        { timeoutMs: SYNC_TIMEOUT_MS, intervalMs: 50 },
      );
    } finally {
      await client.end();
    }
  }

  /**
   * Kills the primary's postmaster with SIGKILL, as a crashed host would lose it: it is stopped first for the
   * instant it takes to list its children, so none is forked unseen. Resolves right after the kill: the
   * children exit when they notice the postmaster is gone (`awaitOldPrimaryGone`).
   */
  async killPrimary(): Promise<PrimaryKill> {
    const postmaster = await postmasterOf(this.primary.dataDirectory);
    if (!postmaster) throw new PrivatePostgresError(`no primary runs on ${this.primary.dataDirectory}`);
    process.kill(postmaster, 'SIGSTOP');
    const children = await childrenOf(postmaster);
    process.kill(postmaster, 'SIGKILL');
    this.primary.state = 'killed';
    this.killed = { postmaster, children, killedAtMs: Date.now(), killedLate: [], childrenGoneMs: undefined };
    return this.killed;
  }

  /**
   * Waits until the killed primary's children have exited; any still alive after ORPHAN_EXIT_TIMEOUT_MS is
   * killed with SIGKILL and named in `kill.killedLate`.
   */
  async awaitOldPrimaryGone(kill: PrimaryKill): Promise<void> {
    const everyone = [kill.postmaster, ...kill.children];
    const deadline = kill.killedAtMs + ORPHAN_EXIT_TIMEOUT_MS;
    while ((await alive(everyone)).length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    kill.killedLate = await alive(kill.children);
    for (const pid of kill.killedLate) process.kill(pid, 'SIGKILL');
    await waitFor(
      "the killed primary's processes to exit",
      async () => (await alive(everyone)).length === 0,
      {
        timeoutMs: 10_000,
      },
    );
    kill.childrenGoneMs = Date.now() - kill.killedAtMs;
  }

  /** `pg_ctl promote -w`: resolves once the standby takes writes. */
  async promoteStandby(): Promise<void> {
    await this.asPostgres(`${POSTGRES_BIN}/pg_ctl`, ['-D', this.standby.dataDirectory, '-w', 'promote']);
  }

  /** Whether `node`'s server answers as in recovery (a standby) or not. */
  async inRecovery(node: PostgresNode): Promise<boolean> {
    const client = new pg.Client({ connectionString: node.url() });
    await client.connect();
    try {
      const { rows } = await client.query<{ recovery: boolean }>('SELECT pg_is_in_recovery() AS recovery');
      return rows[0]!.recovery;
    } finally {
      await client.end();
    }
  }

  /** The processes of `node` still running: its postmaster, and for a killed node any child it had. */
  async liveProcesses(kill: PrimaryKill | undefined, node: 'primary' | 'standby'): Promise<number[]> {
    const postmaster = await postmasterOf(this[node].dataDirectory);
    const orphans = kill && node === 'primary' ? await alive([kill.postmaster, ...kill.children]) : [];
    return [...new Set([...(postmaster ? [postmaster] : []), ...orphans])];
  }

  /** Stops both servers at once (immediate shutdown, or SIGKILL if that fails) and removes the directory. */
  async destroy(): Promise<void> {
    for (const node of [this.primary, this.standby]) {
      const postmaster = await postmasterOf(node.dataDirectory);
      if (!postmaster) continue;
      const children = await childrenOf(postmaster);
      await privateServer.signalAndWait(postmaster, 'SIGQUIT');
      for (const pid of await alive(children)) await privateServer.signalAndWait(pid, 'SIGKILL');
      node.state = 'stopped';
    }
    // A run that failed before the killed primary's children were awaited leaves none of them behind either.
    for (const pid of await alive(this.killed?.children ?? []))
      await privateServer.signalAndWait(pid, 'SIGKILL');
    await rm(this.directory, { recursive: true, force: true });
  }
}
