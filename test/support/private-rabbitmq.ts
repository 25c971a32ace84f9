import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const RABBITMQCTL = '/usr/lib/rabbitmq/bin/rabbitmqctl';
// Server and rabbitmqctl both run as `rabbitmq` with this HOME, so they share its Erlang cookie.
const RABBITMQ_HOME = '/var/lib/rabbitmq';
const DIRECTORY_PREFIX = 'fsw-rabbitmq-';
const START_TIMEOUT_S = 60;
const COMMAND_TIMEOUT_MS = 60_000;

/** A RabbitMQ start or stop that failed; the message carries the tail of the node's own log. */
export class PrivateRabbitMqError extends Error {
  override readonly name = 'PrivateRabbitMqError';
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

/** The pid in `file` if that process still runs with `directory` in its environment (not a recycled pid). */
async function livePidOf(file: string, directory: string): Promise<number | undefined> {
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const environment = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
  return environment.includes(directory) ? pid : undefined;
}

/**
 * Kills nodes whose test process died without destroying them (a crash, a SIGKILL of Jest) and removes their
 * directories: on a shared machine a leaked Erlang VM keeps its memory until someone notices.
 */
async function reapOrphanedNodes(): Promise<void> {
  const entries = await readdir(tmpdir());
  for (const name of entries.filter((entry) => entry.startsWith(DIRECTORY_PREFIX))) {
    const directory = join(tmpdir(), name);
    const owner = Number(await readFile(join(directory, 'owner.pid'), 'utf8').catch(() => ''));
    if (!Number.isInteger(owner) || owner <= 0 || isAlive(owner)) continue;
    const beam = await livePidOf(join(directory, 'rabbitmq.pid'), directory);
    if (beam) {
      process.kill(beam, 'SIGKILL');
      await waitForExit(beam);
    }
    await rm(directory, { recursive: true, force: true });
  }
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * A RabbitMQ node of its own (own node name, ports, data and log directories in a temp dir) that a test may
 * stop and start at will without touching the shared broker on 5672. `restart()` keeps the data directory, so
 * durable queues and persistent messages survive it as they survive a production broker restart.
 */
export class PrivateRabbitMq {
  private server: ChildProcess | undefined;
  private serverExited: Promise<void> = Promise.resolve();

  private constructor(
    readonly directory: string,
    readonly nodeName: string,
    readonly port: number,
    readonly distributionPort: number,
  ) {}

  static async start(): Promise<PrivateRabbitMq> {
    await reapOrphanedNodes();
    const directory = await mkdtemp(join(tmpdir(), DIRECTORY_PREFIX));
    const broker = new PrivateRabbitMq(
      directory,
      `fsw-${randomBytes(4).toString('hex')}@localhost`,
      await freeLocalPort(),
      await freeLocalPort(),
    );
    try {
      await broker.prepareDirectory();
      await broker.startServer();
    } catch (error) {
      await broker.destroy();
      throw error;
    }
    return broker;
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  get isRunning(): boolean {
    return this.server !== undefined;
  }

  private get pidFile(): string {
    return join(this.directory, 'rabbitmq.pid');
  }

  private get logFile(): string {
    return join(this.directory, 'log', `${this.nodeName}.log`);
  }

  private get consoleFile(): string {
    return join(this.directory, 'console.log');
  }

  private async prepareDirectory(): Promise<void> {
    await writeFile(join(this.directory, 'owner.pid'), String(process.pid));
    // A config file of its own: the system one binds 5672, which belongs to the shared broker.
    await writeFile(
      join(this.directory, 'rabbitmq.conf'),
      `listeners.tcp.local = 127.0.0.1:${this.port}\nloopback_users.guest = true\n`,
    );
    await writeFile(join(this.directory, 'enabled_plugins'), '[].\n');
    await mkdir(join(this.directory, 'mnesia'));
    await mkdir(join(this.directory, 'log'));
    await execFileAsync('chown', ['-R', 'rabbitmq:rabbitmq', this.directory]);
  }

  /** The whole environment of the server and of rabbitmqctl: nothing leaks in from the test's own. */
  private environment(): string[] {
    return [
      `PATH=${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
      `HOME=${RABBITMQ_HOME}`,
      'LANG=C.UTF-8',
      `RABBITMQ_NODENAME=${this.nodeName}`,
      'RABBITMQ_NODE_IP_ADDRESS=127.0.0.1',
      `RABBITMQ_NODE_PORT=${this.port}`,
      `RABBITMQ_DIST_PORT=${this.distributionPort}`,
      `RABBITMQ_CONFIG_FILE=${join(this.directory, 'rabbitmq.conf')}`,
      `RABBITMQ_ADVANCED_CONFIG_FILE=${join(this.directory, 'advanced.config')}`,
      `RABBITMQ_MNESIA_BASE=${join(this.directory, 'mnesia')}`,
      `RABBITMQ_LOG_BASE=${join(this.directory, 'log')}`,
      `RABBITMQ_PID_FILE=${this.pidFile}`,
      `RABBITMQ_ENABLED_PLUGINS_FILE=${join(this.directory, 'enabled_plugins')}`,
    ];
  }

  private async startServer(): Promise<void> {
    const consoleFd = openSync(this.consoleFile, 'a');
    let server: ChildProcess;
    try {
      // Its own process group, so one kill reaches runuser, the start script and the Erlang VM.
      server = spawn(
        'runuser',
        ['-u', 'rabbitmq', '--', 'env', '-i', ...this.environment(), RABBITMQ_SERVER],
        { cwd: this.directory, stdio: ['ignore', consoleFd, consoleFd], detached: true },
      );
    } finally {
      closeSync(consoleFd);
    }
    this.server = server;
    this.serverExited = new Promise((resolve) =>
      server.once('exit', () => {
        if (this.server === server) this.server = undefined;
        resolve();
      }),
    );
    let exitedEarly: Promise<never> | undefined;
    try {
      exitedEarly = this.serverExited.then(() => {
        throw new PrivateRabbitMqError('rabbitmq-server exited during start-up');
      });
      await Promise.race([
        this.rabbitmqctl(['wait', this.pidFile, '--timeout', String(START_TIMEOUT_S)]),
        exitedEarly,
      ]);
    } catch (error) {
      await this.killServer();
      throw new PrivateRabbitMqError(
        `RabbitMQ ${this.nodeName} on port ${this.port} did not start: ${(error as Error).message}\n` +
          (await this.logTail()),
        { cause: error },
      );
    } finally {
      exitedEarly?.catch(() => undefined); // settled by a later stop; the race above already reported it
    }
  }

  private async rabbitmqctl(args: string[]): Promise<string> {
    const { stdout } = await execFileAsync(
      'runuser',
      ['-u', 'rabbitmq', '--', 'env', '-i', ...this.environment(), RABBITMQCTL, '-n', this.nodeName, ...args],
      { cwd: this.directory, timeout: COMMAND_TIMEOUT_MS },
    );
    return stdout;
  }

  /** The last lines of the node's log and console output, for error messages. */
  async logTail(lines = 40): Promise<string> {
    const read = (file: string) => readFile(file, 'utf8').catch(() => '');
    return (
      `--- ${this.logFile} (last ${lines} lines)\n${tail(await read(this.logFile), lines)}\n` +
      `--- ${this.consoleFile} (last ${lines} lines)\n${tail(await read(this.consoleFile), lines)}`
    );
  }

  /** Stops the node cleanly (`rabbitmqctl stop`, as an operator would) and waits for its process to end. */
  async stop(): Promise<void> {
    if (!this.server) return;
    try {
      await this.rabbitmqctl(['stop', this.pidFile]);
    } catch (error) {
      throw new PrivateRabbitMqError(
        `RabbitMQ ${this.nodeName} did not stop: ${(error as Error).message}\n${await this.logTail()}`,
        { cause: error },
      );
    }
    await this.serverExited;
  }

  /** Starts the stopped node again on the same ports and data directory. */
  async start(): Promise<void> {
    if (this.server) return;
    await this.startServer();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.startServer();
  }

  /** Stops the node (kills it if a clean stop fails) and removes its directory. */
  async destroy(): Promise<void> {
    try {
      await this.stop();
    } catch (error) {
      console.error(`${(error as Error).message}\nkilling it instead`);
      await this.killServer();
    }
    await rm(this.directory, { recursive: true, force: true });
  }

  /** Kills the Erlang VM and everything in the server's process group at once, and waits for the exit. */
  private async killServer(): Promise<void> {
    const server = this.server;
    if (!server?.pid) return;
    const beam = await livePidOf(this.pidFile, this.directory);
    for (const pid of [beam, -server.pid]) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    }
    await this.serverExited;
  }
}
