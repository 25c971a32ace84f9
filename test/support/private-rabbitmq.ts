import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as privateServer from './private-server.js';

const RABBITMQ_BIN = '/usr/lib/rabbitmq/bin';
const RABBITMQ_SERVER = `${RABBITMQ_BIN}/rabbitmq-server`;
// Server and rabbitmqctl both run as `rabbitmq` with this HOME, so they share its Erlang cookie.
const RABBITMQ_HOME = '/var/lib/rabbitmq';
const PID_FILE = 'rabbitmq.pid';
const START_TIMEOUT_S = 60;

/** A RabbitMQ start or stop that failed; the message carries the tail of the node's own log. */
export class PrivateRabbitMqError extends privateServer.PrivateServerError {
  override readonly name = 'PrivateRabbitMqError';
}

/** The Erlang VM of the node in `directory`, if it still runs (found by the directory in its environment). */
const liveBeamOf = (directory: string) =>
  privateServer.livePidOf(join(directory, PID_FILE), directory, 'environ');

const RABBITMQ_KIND: privateServer.PrivateServerKind = {
  name: 'PrivateRabbitMq',
  user: 'rabbitmq',
  directoryPrefix: 'fsw-rabbitmq-',
  // A leaked Erlang VM keeps its memory until someone notices: kill it outright.
  stopLeftover: async (directory) => privateServer.signalAndWait(await liveBeamOf(directory), 'SIGKILL'),
};

/**
 * A RabbitMQ node of its own (own node name, ports, data and log directories in a temp dir) that a test may
 * stop and start at will without touching the shared broker on 5672. `restart()` keeps the data directory, so
 * durable queues and persistent messages survive it as they survive a production broker restart.
 */
export class PrivateRabbitMq extends privateServer.PrivateServer {
  private server: ChildProcess | undefined;
  private serverExited: Promise<void> = Promise.resolve();

  private constructor(
    directory: string,
    port: number,
    readonly nodeName: string,
    readonly distributionPort: number,
  ) {
    super(directory, port);
  }

  /** Starts a node named `nodeName` (default a random `fsw-…@localhost`). */
  static async start({ nodeName }: { nodeName?: string } = {}): Promise<PrivateRabbitMq> {
    const directory = await privateServer.createServerDirectory(RABBITMQ_KIND);
    const broker = new PrivateRabbitMq(
      directory,
      await privateServer.freeLocalPort(),
      nodeName ?? `fsw-${randomBytes(4).toString('hex')}@localhost`,
      await privateServer.freeLocalPort(),
    );
    return broker.setUpOrDestroy(async () => {
      await broker.prepareDirectory();
      await broker.startServer();
    });
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  get isRunning(): boolean {
    return this.server !== undefined;
  }

  private get pidFile(): string {
    return join(this.directory, PID_FILE);
  }

  private get logFile(): string {
    return join(this.directory, 'log', `${this.nodeName}.log`);
  }

  private get consoleFile(): string {
    return join(this.directory, 'console.log');
  }

  private async prepareDirectory(): Promise<void> {
    // A config file of its own: the system one binds 5672, which belongs to the shared broker.
    await writeFile(
      join(this.directory, 'rabbitmq.conf'),
      `listeners.tcp.local = 127.0.0.1:${this.port}\nloopback_users.guest = true\n`,
    );
    await writeFile(join(this.directory, 'enabled_plugins'), '[].\n');
    await mkdir(join(this.directory, 'mnesia'));
    await mkdir(join(this.directory, 'log'));
    await privateServer.handOver(this.directory, RABBITMQ_KIND.user);
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
      server = privateServer.spawnAsUser(RABBITMQ_KIND.user, RABBITMQ_SERVER, [], {
        cwd: this.directory,
        environment: this.environment(),
        stdio: ['ignore', consoleFd, consoleFd],
      });
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

  private rabbitmqctl(args: string[]): Promise<string> {
    return this.cli('rabbitmqctl', args);
  }

  /** Runs a RabbitMQ command-line tool against this node (`-n <node>`); resolves with its stdout. */
  cli(
    tool: 'rabbitmqctl' | 'rabbitmq-upgrade' | 'rabbitmq-queues' | 'rabbitmq-diagnostics',
    args: string[],
  ): Promise<string> {
    return privateServer.runAsUser(
      RABBITMQ_KIND.user,
      `${RABBITMQ_BIN}/${tool}`,
      ['-n', this.nodeName, ...args],
      {
        cwd: this.directory,
        environment: this.environment(),
      },
    );
  }

  /** The last lines of the node's log and console output, for error messages. */
  async logTail(lines = 40): Promise<string> {
    return `${await privateServer.fileTail(this.logFile, lines)}\n${await privateServer.fileTail(this.consoleFile, lines)}`;
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

  /** Kills the node with SIGKILL, as a crash or an OOM kill would; `start()` brings it back on its data. */
  kill(): Promise<void> {
    return this.killServer();
  }

  protected stopByForce(): Promise<void> {
    return this.killServer();
  }

  /** Kills the Erlang VM and everything in the server's process group at once, and waits for the exit. */
  private async killServer(): Promise<void> {
    const server = this.server;
    if (!server?.pid) return;
    const beam = await liveBeamOf(this.directory);
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
