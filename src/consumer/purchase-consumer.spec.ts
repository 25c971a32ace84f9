import { describe, expect, it, jest } from '@jest/globals';
import type { Channel, ConsumeMessage } from 'amqplib';
import { EventEmitter } from 'node:events';
import type { Delivery } from './delivery.js';
import type { MessageProcessor } from '../purchases/outcome.js';
import { type ConsumerBroker, type ConsumerEvents, PurchaseConsumer } from './purchase-consumer.js';

type Method = 'prefetch' | 'consume' | 'cancel';

/**
 * A consumer channel that records every call in order; any method can be held so that its reply (qos-ok,
 * consume-ok, cancel-ok) comes only when the test releases it, to play each interleaving deterministically.
 */
class FakeChannel extends EventEmitter {
  readonly calls: string[] = [];
  private readonly held = new Map<Method, () => void>();
  private readonly holding = new Set<Method>();
  private consumers = 0;
  deliver: ((message: ConsumeMessage | null) => void) | undefined;

  hold(method: Method): void {
    this.holding.add(method);
  }

  release(method: Method): void {
    this.holding.delete(method);
    const reply = this.held.get(method);
    this.held.delete(method);
    reply?.();
  }

  isWaiting(method: Method): boolean {
    return this.held.has(method);
  }

  private reply<T>(method: Method, value: T): Promise<T> {
    if (!this.holding.has(method)) return Promise.resolve(value);
    return new Promise((resolve) => this.held.set(method, () => resolve(value)));
  }

  prefetch(count: number) {
    this.calls.push(`prefetch ${count}`);
    return this.reply('prefetch', {});
  }

  consume(queue: string, onMessage: (message: ConsumeMessage | null) => void) {
    const tag = `ctag-${++this.consumers}`;
    this.calls.push(`consume ${queue} ${tag}`);
    this.deliver = onMessage;
    return this.reply('consume', { consumerTag: tag });
  }

  cancel(tag: string) {
    this.calls.push(`cancel ${tag}`);
    return this.reply('cancel', {});
  }

  ack(message: ConsumeMessage, allUpTo = false) {
    this.calls.push(`ack ${message.fields.deliveryTag}${allUpTo ? ' multiple' : ''}`);
  }

  close() {
    this.calls.push('close');
    this.emit('close');
    return Promise.resolve();
  }

  consumes(): number {
    return this.calls.filter((call) => call.startsWith('consume')).length;
  }
}

/** A consumer on fake channels, with a switch to make the queue check fail like a refused permission. */
function consumerOnFakes() {
  const channels: FakeChannel[] = [];
  const deliveries: Delivery[] = [];
  const state = { prepareError: undefined as Error | undefined, prepares: 0, nextChannel: new FakeChannel() };
  const broker: ConsumerBroker = {
    openChannel: () => {
      const channel = state.nextChannel;
      state.nextChannel = new FakeChannel();
      channels.push(channel);
      return Promise.resolve(channel as unknown as Channel);
    },
    declareTopology: () => {
      state.prepares++;
      return state.prepareError ? Promise.reject(state.prepareError) : Promise.resolve();
    },
  };
  const pipeline: MessageProcessor<Delivery> = { process: (_message, delivery) => deliveries.push(delivery) };
  const events: ConsumerEvents = {
    onPausedChange: () => undefined,
    onAckFrame: () => undefined,
  };
  const consumer = new PurchaseConsumer(broker, pipeline, events, {
    queue: 'purchase',
    prefetch: 10,
    retryBaseMs: 5,
    retryMaxMs: 20,
  });
  return { consumer, channels, deliveries, state, channel: () => channels.at(-1) as FakeChannel };
}

async function until(what: string, condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * Lets every reply already given run its continuations: the fake channel answers with resolved promises, so
 * by the next turn of the event loop all that could follow from them has (no timer is involved).
 */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

const message = (deliveryTag: number) => ({ fields: { deliveryTag }, properties: {} }) as ConsumeMessage;

describe('PurchaseConsumer', () => {
  it('consumes only once basic.qos is set on the channel', async () => {
    const { consumer, state } = consumerOnFakes();
    state.nextChannel.hold('prefetch');
    const channel = state.nextChannel;
    consumer.onConnected();
    await until('qos sent', () => channel.isWaiting('prefetch'));
    await nextTurn();
    expect(channel.calls).toEqual(['prefetch 10']);

    channel.release('prefetch');
    await until('consuming', () => consumer.state === 'consuming');
    expect(channel.calls).toEqual(['prefetch 10', 'consume purchase ctag-1']);
  });

  it('cancels the new consumer at once when a pause came during its basic.consume', async () => {
    const { consumer, state } = consumerOnFakes();
    const channel = state.nextChannel;
    channel.hold('consume');
    consumer.onConnected();
    await until('consume sent', () => channel.isWaiting('consume'));

    const paused = consumer.pause('database circuit open');
    channel.release('consume');
    await paused;

    expect(channel.calls).toEqual(['prefetch 10', 'consume purchase ctag-1', 'cancel ctag-1']);
    expect(consumer.state).toBe('paused');
  });

  it('never starts a second consumer when a resume comes during a basic.consume', async () => {
    const { consumer, state } = consumerOnFakes();
    const channel = state.nextChannel;
    channel.hold('consume');
    consumer.onConnected();
    await until('consume sent', () => channel.isWaiting('consume'));

    void consumer.pause('database circuit open');
    consumer.resume('database circuit open');
    consumer.resume('database circuit open');
    channel.release('consume');
    await until('consuming', () => consumer.state === 'consuming');
    await nextTurn();

    expect(channel.consumes()).toBe(1);
    expect(channel.calls).toEqual(['prefetch 10', 'consume purchase ctag-1']);
  });

  it('consumes again when resumed during the cancel of a pause, once the cancel is done', async () => {
    const { consumer, state } = consumerOnFakes();
    const channel = state.nextChannel;
    consumer.onConnected();
    await until('consuming', () => consumer.state === 'consuming');
    channel.hold('cancel');

    const paused = consumer.pause('shutting down');
    await until('cancel sent', () => channel.isWaiting('cancel'));
    consumer.resume('shutting down');
    channel.release('cancel');
    await paused;
    await until('consuming', () => consumer.state === 'consuming');

    expect(channel.calls).toEqual([
      'prefetch 10',
      'consume purchase ctag-1',
      'cancel ctag-1',
      'consume purchase ctag-2',
    ]);
  });

  it('on close during a basic.consume, cancels that consumer and consumes no more', async () => {
    const { consumer, state } = consumerOnFakes();
    const channel = state.nextChannel;
    channel.hold('consume');
    consumer.onConnected();
    await until('consume sent', () => channel.isWaiting('consume'));

    const closed = consumer.close();
    channel.release('consume');
    await closed;
    consumer.resume('anything');
    await nextTurn();

    expect(channel.calls).toEqual(['prefetch 10', 'consume purchase ctag-1', 'cancel ctag-1', 'close']);
    expect(consumer.state).toBe('closed');
  });

  it('sends the acks still coalescing before it closes the channel', async () => {
    const { consumer, state, deliveries } = consumerOnFakes();
    const channel = state.nextChannel;
    consumer.onConnected();
    await until('consuming', () => consumer.state === 'consuming');
    channel.deliver?.(message(1));
    channel.deliver?.(message(2));
    for (const delivery of deliveries) expect(delivery.ack()).toBe(true);

    await consumer.close(); // in the same turn: the coalesced ack has not gone out yet

    expect(channel.calls.slice(2)).toEqual(['cancel ctag-1', 'ack 2 multiple', 'close']);
  });

  it('consumes again after a back-off when the broker cancels its consumer', async () => {
    const { consumer, state } = consumerOnFakes();
    const channel = state.nextChannel;
    consumer.onConnected();
    await until('consuming', () => consumer.state === 'consuming');

    channel.deliver?.(null);
    expect(consumer.state).toBe('connecting');
    expect(consumer.problem).toContain('the broker cancelled the consumer of purchase');
    await until('consuming again', () => consumer.state === 'consuming');

    expect(channel.consumes()).toBe(2);
    expect(state.prepares).toBe(2); // the queue is checked (and declared if missing) before consuming again
    expect(consumer.problem).toBeUndefined();
  });

  it('retries a refused queue check with back-off, reporting the broker’s words, and consumes once allowed', async () => {
    const { consumer, state } = consumerOnFakes();
    state.prepareError = new Error(
      'Operation failed: QueueDeclare; 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - access to queue \'purchase\' refused"',
    );
    consumer.onConnected();
    await until('three attempts', () => state.prepares >= 3);

    expect(consumer.state).toBe('connecting');
    expect(consumer.problem).toContain('ACCESS_REFUSED');
    expect(consumer.failingForMs).toBeGreaterThan(0);

    state.prepareError = undefined;
    await until('consuming', () => consumer.state === 'consuming');
    expect(consumer.problem).toBeUndefined();
    expect(consumer.failingForMs).toBe(0);
  });

  it('stops retrying while paused, and does not count that time as failing', async () => {
    jest.useFakeTimers();
    try {
      const { consumer, state } = consumerOnFakes();
      state.prepareError = new Error('NOT_FOUND');
      consumer.onConnected();
      await jest.advanceTimersByTimeAsync(0);
      expect(state.prepares).toBe(1);

      await consumer.pause('database circuit open');
      // Far past the longest back-off (retryMaxMs 20): no attempt is waiting to be made.
      await jest.advanceTimersByTimeAsync(1000);
      expect(state.prepares).toBe(1);
      expect(consumer.state).toBe('paused');
      expect(consumer.failingForMs).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('opens a new channel and consumes again when its channel closes under it', async () => {
    const { consumer, channels } = consumerOnFakes();
    consumer.onConnected();
    await until('consuming', () => consumer.state === 'consuming');

    (channels[0] as FakeChannel).emit('close');
    await until('a second channel consuming', () => channels.length === 2 && consumer.state === 'consuming');
    expect((channels[1] as FakeChannel).calls).toEqual(['prefetch 10', 'consume purchase ctag-1']);
  });
});
