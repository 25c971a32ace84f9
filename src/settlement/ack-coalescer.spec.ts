import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { Message } from 'amqplib';
import { AckCoalescer, type AckReceipt } from './ack-coalescer.js';

class RecordingChannel {
  readonly frames: string[] = [];
  /** Throws as amqplib does once the channel has closed. */
  closed = false;
  ack(message: Message, allUpTo?: boolean) {
    if (this.closed) throw new Error('Channel closed');
    this.frames.push(`${allUpTo ? 'ack≤' : 'ack '}${message.fields.deliveryTag}`);
  }
}

/** Writes down what each receipt was told, as `index:sent`. */
class RecordingReceipt implements AckReceipt {
  readonly told: string[] = [];
  acked(index: number, sent: boolean): void {
    this.told.push(`${index}:${sent ? 'sent' : 'lost'}`);
  }
}

const message = (deliveryTag: number) => ({ fields: { deliveryTag } }) as Message;

function setUp(delivered: number) {
  const channel = new RecordingChannel();
  const acks = new AckCoalescer(channel, () => undefined);
  for (let tag = 1; tag <= delivered; tag++) acks.received(tag);
  return { channel, acks };
}

describe('AckCoalescer', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('sends one multiple-ack for a run of settled deliveries at the head of the window', () => {
    const { channel, acks } = setUp(500);
    for (let tag = 500; tag >= 1; tag--) acks.ack(message(tag));
    acks.flush();
    expect(channel.frames).toEqual(['ack≤500']);
    expect(acks.outstanding).toBe(0);
  });

  it('never multiple-acks past a delivery still in progress: later ones go one by one', () => {
    const { channel, acks } = setUp(5);
    acks.ack(message(1));
    acks.ack(message(2));
    acks.ack(message(4));
    acks.ack(message(5));
    acks.flush();
    expect(channel.frames).toEqual(['ack≤2', 'ack 4', 'ack 5']);

    acks.ack(message(3));
    acks.flush();
    expect(channel.frames.slice(3)).toEqual(['ack≤3']);
    expect(acks.outstanding).toBe(0);
  });

  it('holds acks behind a delivery in progress a moment, so batches committing out of order share one frame', async () => {
    const { channel, acks } = setUp(6);
    for (const tag of [4, 5, 6]) acks.ack(message(tag)); // the later batch commits first
    await new Promise((resolve) => setImmediate(resolve));
    expect(channel.frames).toEqual([]);
    for (const tag of [1, 2, 3]) acks.ack(message(tag));
    await new Promise((resolve) => setImmediate(resolve));
    expect(channel.frames).toEqual(['ack≤6']);
  });

  it('sends held acks one by one once the hold is over: a slow delivery does not keep them', () => {
    jest.useFakeTimers();
    const channel = new RecordingChannel();
    const acks = new AckCoalescer(channel, () => undefined, undefined, 5);
    for (let tag = 1; tag <= 3; tag++) acks.received(tag);
    acks.ack(message(2));
    acks.ack(message(3));
    jest.advanceTimersByTime(4);
    expect(channel.frames).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(channel.frames).toEqual(['ack 2', 'ack 3']);
    acks.ack(message(1));
    acks.flush();
    expect(channel.frames.slice(2)).toEqual(['ack≤1']);
    expect(acks.outstanding).toBe(0);
  });

  it('lets a run pass deliveries that were requeued or dead-lettered', () => {
    const { channel, acks } = setUp(4);
    acks.settled(2);
    acks.ack(message(1));
    acks.ack(message(3));
    acks.ack(message(4));
    acks.flush();
    expect(channel.frames).toEqual(['ack≤4']);
  });

  it('reports the acks it could not send when the channel refuses them', async () => {
    const lost: number[] = [];
    const acks = new AckCoalescer(
      {
        ack: () => {
          throw new Error('Channel closed');
        },
      },
      (count) => lost.push(count),
    );
    acks.received(1);
    acks.received(2);
    acks.ack(message(1));
    acks.ack(message(2));
    await new Promise((resolve) => setImmediate(resolve));
    expect(lost).toEqual([2]);
  });

  describe('receipts', () => {
    it('tells each ack sent once its frame went out, a multiple-ack run and acks sent one by one alike', () => {
      jest.useFakeTimers();
      const { channel, acks } = setUp(4);
      const receipt = new RecordingReceipt();
      acks.ack(message(1), receipt, 0);
      acks.ack(message(3), receipt, 1);
      expect(receipt.told).toEqual([]);
      jest.advanceTimersByTime(0);
      expect(receipt.told).toEqual(['0:sent']);
      jest.advanceTimersByTime(25); // the hold behind delivery 2 is over
      expect(channel.frames).toEqual(['ack≤1', 'ack 3']);
      expect(receipt.told).toEqual(['0:sent', '1:sent']);
    });

    it('tells every queued ack lost, once, when the channel has closed before their turn', () => {
      jest.useFakeTimers();
      const lost: number[] = [];
      const channel = new RecordingChannel();
      const acks = new AckCoalescer(channel, (count) => lost.push(count));
      for (let tag = 1; tag <= 3; tag++) acks.received(tag);
      const receipt = new RecordingReceipt();
      for (const tag of [1, 2, 3]) acks.ack(message(tag), receipt, tag);
      channel.closed = true;
      jest.advanceTimersByTime(100);
      expect(receipt.told.sort()).toEqual(['1:lost', '2:lost', '3:lost']);
      expect(lost).toEqual([3]);
    });

    it('tells them lost when a flush on demand finds the channel closed, and throws what amqplib threw', () => {
      jest.useFakeTimers();
      const { channel, acks } = setUp(2);
      const receipt = new RecordingReceipt();
      acks.ack(message(1), receipt, 0);
      acks.ack(message(2), receipt, 1);
      channel.closed = true;
      expect(() => acks.flush()).toThrow('Channel closed');
      jest.advanceTimersByTime(100);
      expect(receipt.told).toEqual(['0:lost', '1:lost']);
    });
  });
});
