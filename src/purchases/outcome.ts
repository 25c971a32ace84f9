import type { Context, SpanContext } from '@opentelemetry/api';
import type { Purchase, Rejection } from '@flashsale/contract';

export type { Rejection } from '@flashsale/contract';

/**
 * What became of one message. One place turns it into ack / nack / dead-letter (the broker's
 * MessageSettler) and one into an audit event and a metric (OutcomeReporter).
 */
export type Outcome =
  | { kind: 'confirmed'; purchase: Purchase; committedAt: Date }
  | { kind: 'duplicate'; purchase: Purchase; committedAt: Date }
  | { kind: 'rejected'; purchase?: Purchase; rejection: Rejection }
  | { kind: 'retry'; purchase?: Purchase; error: Error };

/** The order is committed (new or a duplicate of one): the message is acked at once. */
export function isCommitted(
  outcome: Outcome,
): outcome is Extract<Outcome, { kind: 'confirmed' | 'duplicate' }> {
  return outcome.kind === 'confirmed' || outcome.kind === 'duplicate';
}

/** What the broker hands the purchase path: a message's body and declared content type. */
export interface IncomingMessage {
  content: Buffer;
  properties: { contentType?: unknown };
}

/** The outcome of one message, with the caller's token for it (the broker's delivery). */
export interface Settled<T> {
  token: T;
  outcome: Outcome;
}

/**
 * The purchase pipeline (validate, batch, persist) as the broker sees it: `process` takes a message and
 * returns at once; its outcome goes on to the settler the pipeline was built with, a whole batch per call.
 */
export interface MessageProcessor<T> {
  /** `trace`: the message's span, which its batch's span links to (while tracing is on). */
  process(message: IncomingMessage, token: T, trace?: SpanContext): void;
}

/** Where outcomes go (MessageSettler): a batch at a time; `trace` holds the batch's span while tracing is on. */
export interface OutcomeSettler<T> {
  settleBatch(settled: readonly Settled<T>[], trace?: Context): void;
}

/** Takes a batch of outcomes; `trace` holds the batch's span while tracing is on (the acks are its child). */
export type SettledListener<T> = (settled: Settled<T>[], trace?: Context) => void;

/** What the reporter needs to know of the message an outcome belongs to. */
export interface MessageFacts {
  messageId: string | undefined;
  deliveryTag: number;
  deliveryCount: number;
  /**
   * Whether the ack, requeue or dead-letter reached the broker. When it did not (channel gone, shutdown), the
   * message is counted as `failed` only: the broker redelivers it and it is counted again then.
   */
  settled: boolean;
}

/** A settled outcome with what is known of its message. */
export interface Reported {
  outcome: Outcome;
  facts: MessageFacts;
}

/** Turns settled outcomes into audit events, metrics and log lines (OutcomeReporter), a batch at a time. */
export interface OutcomeListener {
  report(reported: readonly Reported[]): void;
}
