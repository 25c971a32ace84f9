import amqp, { type Channel, type ChannelModel } from 'amqplib';

/** Reads queue depths without consuming (passive declare); a missing queue reads as undefined. */
export class QueueProbe {
  private channel: Channel | undefined;

  private constructor(private readonly connection: ChannelModel) {}

  static async connect(url: string): Promise<QueueProbe> {
    return new QueueProbe(await amqp.connect(url));
  }

  /** Messages ready in the queue (not those delivered and awaiting an ack), or undefined if it does not exist. */
  async depth(queue: string): Promise<number | undefined> {
    this.channel ??= await this.openChannel();
    try {
      return (await this.channel.checkQueue(queue)).messageCount;
    } catch (error) {
      // A passive declare of a missing queue closes the channel with 404; the next call opens another.
      this.channel = undefined;
      if ((error as { code?: unknown }).code === 404) return undefined;
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  private async openChannel(): Promise<Channel> {
    const channel = await this.connection.createChannel();
    // Errors reach the caller through the rejected call; this only keeps the 404 close from being unhandled.
    channel.on('error', () => undefined);
    return channel;
  }
}
