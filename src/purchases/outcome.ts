import type { Purchase, Rejection } from './purchase.schema.js';

/**
 * What became of one message. One place turns it into ack / nack / dead-letter (the broker's
 * MessageSettler) and one into an audit event and a metric (OutcomeReporter).
 */
export type Outcome =
  | { kind: 'confirmed'; purchase: Purchase; committedAt: Date }
  | { kind: 'duplicate'; purchase: Purchase; committedAt: Date }
  | { kind: 'rejected'; purchase?: Purchase; rejection: Rejection }
  | { kind: 'retry'; purchase?: Purchase; error: Error };

export type OutcomeKind = Outcome['kind'];
