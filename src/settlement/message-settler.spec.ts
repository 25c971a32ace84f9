import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { Outcome, OutcomeListener, Rejection, Reported } from '../purchases/outcome.js';
import { type DeadLetterPublisher, UnroutablePublishError } from './dead-letter.publisher.js';
import { AckCoalescer } from './ack-coalescer.js';
import { Delivery, InFlight, LiveChannel } from '../consumer/delivery.js';
import { MessageSettler, type QueueWatch, type SettlerOptions } from './message-settler.js';

/** A channel that records acks and nacks, and can be closed or made to throw like a closing amqplib channel. */
class FakeChannel {
  readonly acked: number[] = [];
  readonly requeued: number[] = [];
  throwOnSend = false;
  ack(message: ConsumeMessage) {
    if (this.throwOnSend) throw new Error('Channel closed');
    this.acked.push(message.fields.deliveryTag);
  }
  nack(message: ConsumeMessage, _allUpTo: boolean, requeue: boolean) {
    if (this.throwOnSend) throw new Error('Channel closed');
    if (requeue) this.requeued.push(message.fields.deliveryTag);
  }
}

class FakeDeadLetters {
  readonly published: { tag: number; rejection: Rejection }[] = [];
  readonly republished: number[] = [];
  attempts = 0;
  fail: Error | undefined;
  publish(delivery: Delivery, rejection: Rejection): Promise<void> {
    this.attempts++;
    if (this.fail) return Promise.reject(this.fail);
    this.published.push({ tag: delivery.message.fields.deliveryTag, rejection });
    return Promise.resolve();
  }
  republishForRetry(delivery: Delivery): Promise<void> {
    this.republished.push(delivery.message.fields.deliveryTag);
    return Promise.resolve();
  }
}

const purchase = { saleId: '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11', userId: 'user-1', timestamp: new Date() };
const confirmed: Outcome = { kind: 'confirmed', purchase, committedAt: new Date() };
const retry: Outcome = { kind: 'retry', purchase, error: new Error('database said no') };
const ignoredQueues: QueueWatch = { queueMissing: () => undefined, queueBack: () => undefined };
const options: SettlerOptions = { queueType: 'quorum', maxDeliveries: 5, retryBaseMs: 100, retryMaxMs: 1000 };

describe('MessageSettler', () => {
  let channel: FakeChannel;
  let deadLetters: FakeDeadLetters;
  let reported: Outcome[];
  let reports: number;
  let sentFlags: boolean[];
  let tag: number;
  let live: LiveChannel;
  let inFlight: InFlight;

  const delivery = (deliveryCount = 1, open = true): Delivery => {
    if (!open) live.markClosed();
    const message = {
      fields: { deliveryTag: ++tag },
      properties: { headers: { 'x-delivery-count': deliveryCount - 1 } },
      content: Buffer.from('{}'),
    } as unknown as ConsumeMessage;
    live.acks.received(tag);
    inFlight.add();
    return new Delivery(live, message, inFlight);
  };
  const settler = (overrides: Partial<SettlerOptions> = {}, queues: QueueWatch = ignoredQueues) =>
    new MessageSettler(
      deadLetters as unknown as DeadLetterPublisher,
      {
        report: (batch: readonly Reported[]) => {
          reports++;
          for (const { outcome, facts } of batch) {
            reported.push(outcome);
            sentFlags.push(facts.settled);
          }
        },
      } satisfies OutcomeListener,
      { send: () => undefined },
      queues,
      { ...options, ...overrides },
    );

  beforeEach(() => {
    channel = new FakeChannel();
    deadLetters = new FakeDeadLetters();
    reported = [];
    reports = 0;
    sentFlags = [];
    tag = 0;
    inFlight = new InFlight();
    live = new LiveChannel(channel as unknown as Channel, new AckCoalescer(channel, () => undefined));
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('acks a confirmed purchase on the channel that delivered it, then reports it', async () => {
    await settler().settle(delivery(), confirmed);
    live.acks.flush();
    expect(channel.acked).toEqual([1]);
    expect(reported).toEqual([confirmed]);
    expect(sentFlags).toEqual([true]);
  });

  it('acks a batch of committed purchases and reports them in one call', () => {
    const duplicate: Outcome = { ...confirmed, kind: 'duplicate' };
    const batch = [delivery(), delivery(), delivery()].map((token, index) => ({
      token,
      outcome: index === 1 ? duplicate : confirmed,
    }));
    settler().settleCommitted(batch);
    live.acks.flush();
    expect(channel.acked).toEqual([3]);
    expect(reports).toBe(1);
    expect(reported.map((outcome) => outcome.kind)).toEqual(['confirmed', 'duplicate', 'confirmed']);
    expect(sentFlags).toEqual([true, true, true]);
  });

  describe('when the channel closes before the coalesced acks of a committed batch go out', () => {
    it('reports the batch once, every message as not settled (counted as failed only), then finishes it', async () => {
      jest.useFakeTimers();
      const batch = [delivery(), delivery()].map((token) => ({ token, outcome: confirmed }));
      settler().settleCommitted(batch);
      // Queued, not sent: neither reported nor finished before the acks' turn.
      expect({ reports, inFlight: inFlight.size }).toEqual({ reports: 0, inFlight: 2 });

      channel.throwOnSend = true;
      await jest.advanceTimersByTimeAsync(0);
      expect(channel.acked).toEqual([]);
      expect(reports).toBe(1);
      expect(sentFlags).toEqual([false, false]);
      expect(inFlight.size).toBe(0);
    });

    it('reports a message settled one by one as not settled either', async () => {
      jest.useFakeTimers();
      const settled = settler().settle(delivery(), confirmed);
      channel.throwOnSend = true;
      await jest.advanceTimersByTimeAsync(0);
      await settled;
      expect(sentFlags).toEqual([false]);
    });
  });

  it('reports a committed batch as settled once its acks went out, and finishes it then', async () => {
    jest.useFakeTimers();
    settler().settleCommitted([{ token: delivery(), outcome: confirmed }]);
    await jest.advanceTimersByTimeAsync(0);
    expect(channel.acked).toEqual([1]);
    expect(sentFlags).toEqual([true]);
    expect(inFlight.size).toBe(0);
  });

  it('sends nothing on a channel that has closed, and reports it as not settled', async () => {
    await settler().settle(delivery(1, false), confirmed);
    expect(channel.acked).toEqual([]);
    expect(sentFlags).toEqual([false]);
  });

  it('survives a requeue on a channel closing under it (amqplib throws) without crashing', async () => {
    jest.useFakeTimers();
    channel.throwOnSend = true;
    const closing = delivery(2);
    const settled = settler().settle(closing, retry);
    await jest.advanceTimersByTimeAsync(1000);
    await settled;
    expect(closing.isLive).toBe(false);
    expect(sentFlags).toEqual([false]);
  });

  it('acks a rejected message only after its dead-letter copy is confirmed', async () => {
    const rejection: Rejection = { code: 'NOT_JSON', reason: 'body is not JSON' };
    await settler().settle(delivery(), { kind: 'rejected', rejection });
    expect(deadLetters.published).toEqual([{ tag: 1, rejection }]);
    live.acks.flush();
    expect(channel.acked).toEqual([1]);
  });

  describe('when the dead-letter publish fails', () => {
    const rejected: Outcome = { kind: 'rejected', rejection: { code: 'NOT_JSON', reason: 'x' } };

    it('requeues instead of acking, after the retry back-off, never at once', async () => {
      jest.useFakeTimers();
      deadLetters.fail = new Error('not confirmed');
      const settled = settler().settle(delivery(), rejected);
      await jest.advanceTimersByTimeAsync(99);
      expect(channel.requeued).toEqual([]);
      await jest.advanceTimersByTimeAsync(1000);
      await settled;
      live.acks.flush();
      expect(channel.acked).toEqual([]);
      expect(channel.requeued).toEqual([1]);
      expect(reported[0]?.kind).toBe('retry');
    });

    it('at the delivery limit, backs off and requeues too: nothing acked, no loop', async () => {
      jest.useFakeTimers();
      deadLetters.fail = new Error('not confirmed');
      const settled = settler().settle(delivery(5), retry);
      await jest.advanceTimersByTimeAsync(1000);
      await settled;
      live.acks.flush();
      expect(deadLetters.attempts).toBe(1);
      expect(channel.acked).toEqual([]);
      expect(channel.requeued).toEqual([1]);
    });

    it('on a classic queue, backs off and republishes with the delivery count, so the limit still applies', async () => {
      jest.useFakeTimers();
      deadLetters.fail = new Error('not confirmed');
      const settled = settler({ queueType: 'classic' }).settle(delivery(2), rejected);
      await jest.advanceTimersByTimeAsync(99);
      expect(deadLetters.republished).toEqual([]);
      await jest.advanceTimersByTimeAsync(1000);
      await settled;
      expect(deadLetters.republished).toEqual([1]);
    });

    it('tells that the queue is missing when the publish came back unroutable, and when it gets through again', async () => {
      jest.useFakeTimers();
      const missing: string[] = [];
      let deliveredAgain = 0;
      const subject = settler(
        {},
        {
          queueMissing: (queue) => missing.push(queue),
          queueBack: () => deliveredAgain++,
        },
      );
      deadLetters.fail = new UnroutablePublishError('purchase.dlq', 'returned unroutable');
      const settled = subject.settle(delivery(), rejected);
      await jest.advanceTimersByTimeAsync(1000);
      await settled;
      expect(missing).toEqual(['purchase.dlq']);
      expect(channel.requeued).toEqual([1]);

      deadLetters.fail = undefined;
      const deadLettered = subject.settle(delivery(), rejected);
      await jest.advanceTimersByTimeAsync(0); // the turn its ack goes out on
      await deadLettered;
      expect(deliveredAgain).toBe(1);
    });
  });

  it('requeues a retry only after a back-off, never at once', async () => {
    jest.useFakeTimers();
    const settled = settler().settle(delivery(3), retry);
    await jest.advanceTimersByTimeAsync(99);
    expect(channel.requeued).toEqual([]);
    await jest.advanceTimersByTimeAsync(1000);
    await settled;
    expect(channel.requeued).toEqual([1]);
  });

  it('dead-letters a message failing on its last allowed delivery, with the error as the reason', async () => {
    await settler().settle(delivery(5), retry);
    expect(channel.requeued).toEqual([]);
    expect(deadLetters.published[0]?.rejection).toEqual({
      code: 'DELIVERY_LIMIT',
      reason: 'failed on each of 5 deliveries; last error: database said no',
    });
    live.acks.flush();
    expect(channel.acked).toEqual([1]);
  });

  it('on a classic queue, republishes a retry with its count and acks the original', async () => {
    jest.useFakeTimers();
    const settled = settler({ queueType: 'classic' }).settle(delivery(2), retry);
    await jest.advanceTimersByTimeAsync(1000);
    await settled;
    expect(deadLetters.republished).toEqual([1]);
    live.acks.flush();
    expect(channel.acked).toEqual([1]);
  });

  it('leaves a message waiting out its back-off unacked when shutdown interrupts the wait', async () => {
    jest.useFakeTimers();
    const shutdown = new AbortController();
    const settled = settler({ signal: shutdown.signal }).settle(delivery(2), retry);
    shutdown.abort();
    await settled;
    expect(channel.requeued).toEqual([]);
    expect(channel.acked).toEqual([]);
    expect(sentFlags).toEqual([false]);
  });
});
