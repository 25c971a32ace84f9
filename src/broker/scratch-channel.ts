import type { Channel, ChannelModel } from 'amqplib';

/**
 * Runs `work` on a channel of its own and closes it afterwards: for checks that may fail, since a failed
 * check (a passive declare of a missing queue, say) closes the channel it ran on.
 */
export async function withScratchChannel<T>(
  connection: ChannelModel | undefined,
  work: (channel: Channel) => Promise<T>,
): Promise<T> {
  if (!connection) throw new Error('not connected to the broker');
  const channel = await connection.createChannel();
  // A failed check closes the channel and also emits `error`; the rejection of `work` already carries that
  // error to the caller, so the event needs no second handling.
  channel.on('error', () => undefined);
  try {
    return await work(channel);
  } finally {
    // After a failed check the broker has closed this channel already; closing it again is a no-op.
    await channel.close().catch(() => undefined);
  }
}
