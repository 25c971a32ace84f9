import type { Span } from '@opentelemetry/api';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { AckCoalescer } from './ack-coalescer.js';

/** A consumer channel as the transport knows it: delivery tags are only valid while `open`. */
export interface LiveChannel {
  channel: Channel;
  acks: AckCoalescer;
  open: boolean;
  /** Set while a consumer is registered on this channel. */
  consumerTag: string | undefined;
}

/** One message received, with the channel it came on (acks must go back on that very channel). */
export interface Delivery {
  live: LiveChannel;
  message: ConsumeMessage;
  /** 1 on the first delivery; counted by the quorum queue (`x-delivery-count`) or by `x-retry-count`. */
  deliveryCount: number;
  /** The message's span while tracing is on (observability/tracing.ts). */
  span?: Span;
}

function headerNumber(value: unknown): number | undefined {
  const number = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  return Number.isFinite(number) && number >= 0 ? number : undefined;
}

export function deliveryCountOf(message: ConsumeMessage): number {
  const headers = message.properties.headers ?? {};
  const previous = headerNumber(headers['x-delivery-count']) ?? headerNumber(headers['x-retry-count']);
  if (previous !== undefined) return previous + 1;
  return message.fields.redelivered ? 2 : 1;
}
