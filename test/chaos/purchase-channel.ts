import amqp, { type ChannelModel, type ConfirmChannel, type GetMessage } from 'amqplib';

// Confirms are awaited per window: large enough that publishing outpaces the fleet and a backlog builds.
const CONFIRM_WINDOW = 5000;

/**
 * The chaos suite's side of the broker, as the flash-sale API uses it: a confirm channel publishing
 * persistent JSON messages to the default exchange, plus passive reads of queue depths and the DLQ.
 * It is closed before the broker restarts and opened again after, as a publisher would reconnect.
 */
export class PurchaseChannel {
  private constructor(
    private readonly connection: ChannelModel,
    private readonly channel: ConfirmChannel,
  ) {}

  static async open(url: string): Promise<PurchaseChannel> {
    const connection = await amqp.connect(url);
    const channel = await connection.createConfirmChannel();
    return new PurchaseChannel(connection, channel);
  }

  /** Publishes `bodies` to `queue` and resolves once the broker has confirmed every one. */
  async publish(queue: string, bodies: string[]): Promise<void> {
    for (let start = 0; start < bodies.length; start += CONFIRM_WINDOW) {
      for (const body of bodies.slice(start, start + CONFIRM_WINDOW)) {
        const accepted = this.channel.sendToQueue(queue, Buffer.from(body), {
          persistent: true,
          contentType: 'application/json',
        });
        if (!accepted) await new Promise((resolve) => this.channel.once('drain', resolve));
      }
      await this.channel.waitForConfirms();
    }
  }

  /** Messages ready in `queue` (not counting those delivered and unacked). */
  async depth(queue: string): Promise<number> {
    const channel = await this.connection.createChannel();
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } finally {
      await channel.close();
    }
  }

  /** Takes every message off `queue` with basic.get, acking each. */
  async drain(queue: string): Promise<GetMessage[]> {
    const channel = await this.connection.createChannel();
    const messages: GetMessage[] = [];
    try {
      for (let message = await channel.get(queue); message; message = await channel.get(queue)) {
        messages.push(message);
        channel.ack(message);
      }
      return messages;
    } finally {
      await channel.close();
    }
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
