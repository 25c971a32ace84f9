import type { Purchase, Rejection } from './purchase.schema.js';

export type { Rejection } from './purchase.schema.js';

/**
 * What became of one message. One place turns it into ack / nack / dead-letter (the broker's
 * MessageSettler) and one into an audit event and a metric (OutcomeReporter).
 */
export type Outcome =
  | { kind: 'confirmed'; purchase: Purchase; committedAt: Date }
  | { kind: 'duplicate'; purchase: Purchase; committedAt: Date }
  | { kind: 'rejected'; purchase?: Purchase; rejection: Rejection }
  | { kind: 'retry'; purchase?: Purchase; error: Error };

/** What the broker hands the purchase path: a message's body and declared content type. */
export interface IncomingMessage {
  content: Buffer;
  properties: { contentType?: unknown };
}

/** Turns one message into its outcome: the purchase pipeline (validate, batch, persist). */
export interface MessageProcessor {
  process(message: IncomingMessage): Promise<Outcome>;
}

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

/** Turns a settled outcome into an audit event, a metric and a log line (OutcomeReporter). */
export interface OutcomeListener {
  report(outcome: Outcome, facts: MessageFacts): void;
}
