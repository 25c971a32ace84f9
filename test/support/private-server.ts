import { type ChildProcess, execFile, spawn, type StdioOptions } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const OWNER_PID_FILE = 'owner.pid';
const COMMAND_TIMEOUT_MS = 60_000;

/** A private server that could not be set up, started or stopped; the message says which and why. */
export class PrivateServerError extends Error {
  override readonly name: string = 'PrivateServerError';
}

/** A port on 127.0.0.1 that nothing listens on right now. */
export async function freeLocalPort(): Promise<number> {
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

/** Sends `signal` to `pid`, if there is one, and waits until it has exited. */
export async function signalAndWait(pid: number | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!pid) return;
  process.kill(pid, signal);
  await waitForExit(pid);
}

/**
 * The pid on the first line of `pidFile` if that process still runs and its `/proc/<pid>/<procEntry>` names
 * `directory`: a pid recycled by an unrelated process is never signalled.
 */
export async function livePidOf(
  pidFile: string,
  directory: string,
  procEntry: 'cmdline' | 'environ',
): Promise<number | undefined> {
  const text = await readFile(pidFile, 'utf8').catch(() => '');
  const pid = Number(text.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const described = await readFile(`/proc/${pid}/${procEntry}`, 'utf8').catch(() => '');
  return described.includes(directory) ? pid : undefined;
}

/** The last `lines` lines of `file` under a header naming it, for error messages. */
export async function fileTail(file: string, lines: number): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return `--- ${file} (last ${lines} lines)\n${text.trimEnd().split('\n').slice(-lines).join('\n')}`;
}

/** Makes the system `user` the owner of `path` and everything below it. */
export async function handOver(path: string, user: string): Promise<void> {
  await execFileAsync('chown', ['-R', `${user}:${user}`, path]);
}

export interface RunAsUserOptions {
  cwd: string;
  /** The command's whole environment (`NAME=value`); without it, runuser's own. */
  environment?: string[];
}

function runuserArguments(user: string, command: string, args: string[], environment?: string[]): string[] {
  const isolated = environment ? ['env', '-i', ...environment] : [];
  return ['-u', user, '--', ...isolated, command, ...args];
}

/** Runs `command` as the system `user`; resolves with its stdout, fails on a non-zero exit or a timeout. */
export async function runAsUser(
  user: string,
  command: string,
  args: string[],
  { cwd, environment }: RunAsUserOptions,
): Promise<string> {
  const { stdout } = await execFileAsync('runuser', runuserArguments(user, command, args, environment), {
    cwd,
    timeout: COMMAND_TIMEOUT_MS,
  });
  return stdout;
}

/** Spawns `command` as the system `user` in a process group of its own, so one kill reaches all it starts. */
export function spawnAsUser(
  user: string,
  command: string,
  args: string[],
  { cwd, environment, stdio }: RunAsUserOptions & { stdio: StdioOptions },
): ChildProcess {
  return spawn('runuser', runuserArguments(user, command, args, environment), { cwd, stdio, detached: true });
}

/** What sets one kind of private server apart when its directories are made and its leftovers removed. */
export interface PrivateServerKind {
  /** Names the kind in messages, e.g. `PrivatePostgres`. */
  name: string;
  /** The system user the server runs as. */
  user: string;
  /** Prefix of its directories, each `<tmpdir>/<prefix>XXXXXX`. */
  directoryPrefix: string;
  /** Ends the server still running in `directory` though the test process that started it died. */
  stopLeftover(directory: string): Promise<void>;
}

/**
 * Stops servers whose test process died without destroying them (a crash, a SIGKILL of Jest) and removes
 * their directories, so leaks on a shared machine end with the next run.
 */
async function removeLeftovers(kind: PrivateServerKind): Promise<void> {
  const entries = await readdir(tmpdir());
  for (const name of entries.filter((entry) => entry.startsWith(kind.directoryPrefix))) {
    const directory = join(tmpdir(), name);
    const owner = Number(await readFile(join(directory, OWNER_PID_FILE), 'utf8').catch(() => ''));
    if (!Number.isInteger(owner) || owner <= 0 || isAlive(owner)) continue;
    await kind.stopLeftover(directory);
    await rm(directory, { recursive: true, force: true });
  }
}

/**
 * A new directory for one server of `kind`, owned by this test process (its pid in `owner.pid`), made after
 * the leftovers of dead test processes are removed.
 */
export async function createServerDirectory(kind: PrivateServerKind): Promise<string> {
  if (process.getuid?.() !== 0) {
    throw new PrivateServerError(
      `${kind.name} must run as root: it starts the server as user ${kind.user} with runuser`,
    );
  }
  await removeLeftovers(kind);
  const directory = await mkdtemp(join(tmpdir(), kind.directoryPrefix));
  try {
    await writeFile(join(directory, OWNER_PID_FILE), String(process.pid));
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  return directory;
}

/**
 * A server of a test's own, in its own temp directory and on its own port, that the test may stop and start
 * at will without touching the shared servers every other test uses.
 */
export abstract class PrivateServer {
  protected constructor(
    readonly directory: string,
    readonly port: number,
  ) {}

  abstract get isRunning(): boolean;

  /** Starts the stopped server again on the same port and directory; resolves once it serves. */
  abstract start(): Promise<void>;

  /** Stops the server as an operator would; resolves once it no longer serves. */
  abstract stop(): Promise<void>;

  /** The last lines of the server's own log, for error messages. */
  abstract logTail(lines?: number): Promise<string>;

  /** Stops the server at once, for when a clean stop failed. */
  protected abstract stopByForce(): Promise<void>;

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops the server (by force if a clean stop fails) and removes its directory. */
  async destroy(): Promise<void> {
    try {
      await this.stop();
    } catch (error) {
      console.error(`${(error as Error).message}\nstopping it by force instead`);
      await this.stopByForce();
    }
    await rm(this.directory, { recursive: true, force: true });
  }

  /** Runs the first set-up and start; if it fails, destroys the server so that nothing is left behind. */
  protected async setUpOrDestroy(setUp: () => Promise<void>): Promise<this> {
    try {
      await setUp();
    } catch (error) {
      await this.destroy();
      throw error;
    }
    return this;
  }
}
