import { randomBytes } from 'node:crypto';
import { PrivateRabbitMq, PrivateRabbitMqError } from './private-rabbitmq.js';

/** Where one queue lives on the cluster, by node name. */
export interface QueueReplicas {
  name: string;
  leader: string;
  members: string[];
}

/**
 * A RabbitMQ cluster of a test's own: nodes `c1-<run>@localhost`, `c2-<run>@localhost`, … (a suffix per
 * run, so runs never collide), each a PrivateRabbitMq with its own ports and directories, sharing the Erlang
 * cookie of user `rabbitmq`; the others join the first with `join_cluster`. The test may kill, start, drain
 * and revive any node; `destroy()` stops these nodes only.
 */
export class PrivateRabbitMqCluster {
  private constructor(readonly nodes: PrivateRabbitMq[]) {}

  static async start(size = 3): Promise<PrivateRabbitMqCluster> {
    const run = randomBytes(3).toString('hex');
    const started = await Promise.allSettled(
      Array.from({ length: size }, (_, index) =>
        PrivateRabbitMq.start({ nodeName: `c${index + 1}-${run}@localhost` }),
      ),
    );
    const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const cluster = new PrivateRabbitMqCluster(nodes);
    try {
      const failed = started.find((result) => result.status === 'rejected');
      if (failed) throw failed.reason;
      const [first, ...others] = nodes;
      for (const node of others) {
        await node.cli('rabbitmqctl', ['stop_app']);
        await node.cli('rabbitmqctl', ['join_cluster', first!.nodeName]);
        await node.cli('rabbitmqctl', ['start_app']);
      }
      await first!.cli('rabbitmqctl', ['await_online_nodes', String(size), '--timeout', '60']);
    } catch (error) {
      await cluster.destroy();
      throw new PrivateRabbitMqError(`the ${size}-node cluster did not form: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return cluster;
  }

  /** The AMQP URL of every node, in node order. */
  get urls(): string[] {
    return this.nodes.map((node) => node.url);
  }

  /** The node whose AMQP port is `port`. */
  nodeOnPort(port: number): PrivateRabbitMq | undefined {
    return this.nodes.find((node) => node.port === port);
  }

  nodeNamed(nodeName: string): PrivateRabbitMq {
    const node = this.nodes.find((candidate) => candidate.nodeName === nodeName);
    if (!node) throw new Error(`no node ${nodeName} in the cluster`);
    return node;
  }

  /** A node that runs, to ask about the cluster. */
  private anyRunningNode(): PrivateRabbitMq {
    const node = this.nodes.find((candidate) => candidate.isRunning);
    if (!node) throw new PrivateRabbitMqError('no node of the cluster runs');
    return node;
  }

  /** Leader and members of every queue, as `rabbitmqctl list_queues name leader members` reports them. */
  async queueReplicas(): Promise<QueueReplicas[]> {
    const text = await this.anyRunningNode().cli('rabbitmqctl', [
      'list_queues',
      '--quiet',
      '--formatter',
      'json',
      'name',
      'leader',
      'members',
    ]);
    return JSON.parse(text) as QueueReplicas[];
  }

  /** Leader and members of `queue`. */
  async replicasOf(queue: string): Promise<QueueReplicas> {
    const found = (await this.queueReplicas()).find((replicas) => replicas.name === queue);
    if (!found) throw new Error(`no queue ${queue} on the cluster`);
    return found;
  }

  /**
   * Maintenance mode (`rabbitmq-upgrade drain`): the node closes its client connections, stops accepting
   * new ones and hands the leadership of its quorum queues to other nodes.
   */
  async drain(node: PrivateRabbitMq): Promise<void> {
    await node.cli('rabbitmq-upgrade', ['drain']);
  }

  /** Ends maintenance mode (`rabbitmq-upgrade revive`): the node takes clients again. */
  async revive(node: PrivateRabbitMq): Promise<void> {
    await node.cli('rabbitmq-upgrade', ['revive']);
  }

  /** Stops every node of this cluster (by force if a clean stop fails) and removes their directories. */
  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.destroy()));
  }
}
