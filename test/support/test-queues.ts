import { afterAll, beforeAll } from '@jest/globals';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { TEST_RABBITMQ_URL, uniqueName } from './harness.js';

/** A test file's channel to the shared broker, and the queues its tests declare on it. */
export interface TestQueues {
  /** The file's own channel, open from its `beforeAll` to its `afterAll`. */
  readonly channel: Channel;
  /** A new queue name, `<prefix>_<hex>`, deleted after the tests: for a queue the code under test declares. */
  name(): string;
  /** A new durable queue of such a name, with `args`; deleted after the tests. */
  declare(args?: Record<string, unknown>): Promise<string>;
  /** How many messages `queue` holds now. */
  depth(queue: string): Promise<number>;
}

/**
 * Connects to the shared broker before the tests of the enclosing `describe`; after them, deletes every queue
 * declared through it and closes the connection. Call it in the body of that `describe`.
 */
export function testQueues(prefix: string): TestQueues {
  let connection: ChannelModel | undefined;
  let openChannel: Channel | undefined;
  const declared: string[] = [];

  beforeAll(async () => {
    connection = await amqp.connect(TEST_RABBITMQ_URL);
    openChannel = await connection.createChannel();
  });
  afterAll(async () => {
    for (const queue of declared) await openChannel?.deleteQueue(queue);
    await connection?.close();
  });

  const queues: TestQueues = {
    get channel(): Channel {
      if (!openChannel) throw new Error(`the ${prefix} queues' channel is open only while their tests run`);
      return openChannel;
    },
    name() {
      const queue = uniqueName(prefix);
      declared.push(queue);
      return queue;
    },
    async declare(args = {}) {
      const queue = queues.name();
      await queues.channel.assertQueue(queue, { durable: true, arguments: args });
      return queue;
    },
    depth: async (queue) => (await queues.channel.checkQueue(queue)).messageCount,
  };
  return queues;
}
