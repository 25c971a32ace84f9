import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { Outcome, Rejection, Settled } from '../purchases/outcome.js';
import { AckCoalescer } from './ack-coalescer.js';
import type { DeadLetterPublisher } from './dead-letter.publisher.js';
import { Delivery, InFlight, LiveChannel } from '../consumer/delivery.js';
import { MessageSettler } from './message-settler.js';

/** Where the settler hands messages that asked for a reply: which acks were on the channel at that moment. */
describe('MessageSettler, for messages that ask for a reply', () => {
  let acked: number[];
  let throwOnAck: boolean;
  let dlqFails: boolean;
  let live: LiveChannel;
  let inFlight: InFlight;
  let tag: number;
  let replies: { tags: number[]; ackedBefore: number[] }[];

  const purchase = { saleId: '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11', userId: 'u', timestamp: new Date() };
  const confirmed: Outcome = { kind: 'confirmed', purchase, committedAt: new Date() };
  const rejection: Rejection = { code: 'NOT_JSON', reason: 'body is empty' };

  const delivery = (replyTo?: string): Delivery => {
    const message = {
      fields: { deliveryTag: ++tag },
      properties: { headers: {}, replyTo, correlationId: replyTo && 'c' },
      content: Buffer.from('{}'),
    } as unknown as ConsumeMessage;
    live.acks.received(tag);
    inFlight.add();
    return new Delivery(live, message, inFlight);
  };
  const settler = () =>
    new MessageSettler(
      {
        publish: () => (dlqFails ? Promise.reject(new Error('not confirmed')) : Promise.resolve()),
      } as unknown as DeadLetterPublisher,
      { report: () => undefined },
      {
        send: (settled: readonly Settled<Delivery>[]) =>
          replies.push({
            tags: settled.map(({ token }) => token.message.fields.deliveryTag),
            ackedBefore: [...acked],
          }),
      },
      { queueMissing: () => undefined, queueBack: () => undefined },
      { queueType: 'quorum', maxDeliveries: 5, retryBaseMs: 1, retryMaxMs: 1 },
    );

  beforeEach(() => {
    // The settler says at debug that an ack found its channel closed.
    jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    acked = [];
    throwOnAck = false;
    dlqFails = false;
    tag = 0;
    replies = [];
    const channel = {
      ack: (message: ConsumeMessage, allUpTo = false) => {
        if (throwOnAck) throw new Error('Channel closed');
        acked.push(allUpTo ? -message.fields.deliveryTag : message.fields.deliveryTag);
      },
      nack: () => undefined,
    };
    inFlight = new InFlight();
    live = new LiveChannel(channel as unknown as Channel, new AckCoalescer(channel, () => undefined));
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('hands over the committed ones that asked, after their ack frame is sent (one multiple-ack)', () => {
    const batch = [delivery('r'), delivery(), delivery('r')].map((token) => ({ token, outcome: confirmed }));
    settler().settleBatch(batch);
    expect(replies).toEqual([{ tags: [1, 3], ackedBefore: [-3] }]);
  });

  it('hands over nothing, and sends acks with the next turn as before, when no message asked', () => {
    settler().settleBatch([delivery(), delivery()].map((token) => ({ token, outcome: confirmed })));
    expect(acked).toEqual([]);
    expect(replies).toEqual([]);
  });

  it('hands over a rejected message after its dead-letter copy is confirmed and its ack sent', async () => {
    await settler().settle(delivery('r'), { kind: 'rejected', rejection });
    expect(replies).toEqual([{ tags: [1], ackedBefore: [-1] }]);
  });

  it('hands over nothing when the dead-letter publish fails: the message comes back', async () => {
    dlqFails = true;
    await settler().settle(delivery('r'), { kind: 'rejected', rejection });
    expect(replies).toEqual([]);
  });

  it('hands over nothing for a retry', async () => {
    await settler().settle(delivery('r'), { kind: 'retry', error: new Error('away') });
    expect(replies).toEqual([]);
  });

  it('hands over nothing when the ack cannot be sent (channel closed): the redelivery is replied to', () => {
    throwOnAck = true;
    settler().settleBatch([{ token: delivery('r'), outcome: confirmed }]);
    expect(replies).toEqual([]);
    expect(live.open).toBe(false);
  });

  it('hands over nothing on a channel known to be closed', () => {
    live.markClosed();
    settler().settleBatch([{ token: delivery('r'), outcome: confirmed }]);
    expect(replies).toEqual([]);
  });
});
