import { safeText } from '../../common/safe-text.js';
import { republishedProperties } from '../../broker/message-properties.js';
import type { Message, MessageProperties, Options } from 'amqplib';

/**
 * How the operator's tool reads a dead letter: why it is there, since when, and what it looks like; and the
 * headers and properties it is replayed with. Pure functions over the message as amqplib hands it over.
 */

type Headers = Record<string, unknown>;

/** A reason the worker wrote, or the broker's own when it dead-lettered the message itself. */
export interface RejectionFacts {
  /** `x-rejection-reason`; else the broker's `x-death` reason (`delivery_limit`, `rejected`, `expired`, `maxlen`). */
  reason: string;
  /** `x-rejection-code` of the worker, `broker` when the broker dead-lettered it, else undefined. */
  code: string | undefined;
}

export const NO_REASON = '(no reason recorded)';

/** Headers the worker or the broker adds when dead-lettering: a replayed message starts without them. */
const DEAD_LETTER_HEADERS = [
  'x-rejection-reason',
  'x-rejection-code',
  'x-rejected-by',
  'x-rejected-at-delivery',
  'x-original-queue',
  'x-publish-id',
  // A replay is a fresh start: a delivery count carried over would bring the message to its limit early.
  'x-delivery-count',
  'x-retry-count',
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
];

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}

function headersOf(message: Message): Headers {
  return message.properties.headers ?? {};
}

interface DeathRecord {
  reason?: unknown;
  queue?: unknown;
  time?: unknown;
  count?: unknown;
}

/** The broker's most recent dead-lettering of this message, if it did any. */
function lastDeath(headers: Headers): DeathRecord | undefined {
  const deaths = headers['x-death'];
  return Array.isArray(deaths) ? (deaths[0] as DeathRecord | undefined) : undefined;
}

export function rejectionOf(message: Message): RejectionFacts {
  const headers = headersOf(message);
  const reason = text(headers['x-rejection-reason']);
  if (reason !== undefined) return { reason, code: text(headers['x-rejection-code']) };
  const brokerReason = text(lastDeath(headers)?.reason) ?? text(headers['x-first-death-reason']);
  if (brokerReason !== undefined) return { reason: brokerReason, code: 'broker' };
  return { reason: NO_REASON, code: undefined };
}

/** AMQP timestamps are whole seconds; amqplib hands those inside tables over as `{ '!': 'timestamp', value }`. */
function dateFromAmqpTimestamp(value: unknown): Date | undefined {
  const seconds =
    typeof value === 'number' ? value : (value as { '!'?: unknown; value?: unknown } | undefined)?.value;
  return typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000) : undefined;
}

/** When the message was first seen failing: the worker's `x-first-seen`, the broker's death time, or its publish time. */
export function firstSeenOf(message: Message): Date | undefined {
  const headers = headersOf(message);
  const firstSeen = text(headers['x-first-seen']);
  if (firstSeen !== undefined && !Number.isNaN(Date.parse(firstSeen))) return new Date(firstSeen);
  return (
    dateFromAmqpTimestamp(lastDeath(headers)?.time) ?? dateFromAmqpTimestamp(message.properties.timestamp)
  );
}

/** The delivery on which the worker rejected the message (`x-rejected-at-delivery`). */
export function rejectedAtDeliveryOf(message: Message): number | undefined {
  const count = headersOf(message)['x-rejected-at-delivery'];
  return typeof count === 'number' ? count : undefined;
}

/** The start of the body as readable text on one line: control characters escaped, invalid UTF-8 as U+FFFD. */
// Controls, line separators, bidi controls and lone surrogates: shown as \u escapes in a body preview.
const SHOWN_ESCAPED = /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;

function escaped(character: string): string {
  const json = JSON.stringify(character).slice(1, -1);
  return json !== character ? json : `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

export function bodyPreview(content: Buffer, maxCharacters: number): string {
  // Enough bytes for one character more than shown (UTF-8 takes at most 4 a character), not the whole body.
  const window = content.subarray(0, (maxCharacters + 1) * 4);
  const characters = [...window.toString('utf8')];
  const shown = characters
    .slice(0, maxCharacters)
    .map((character) => (SHOWN_ESCAPED.test(character) ? escaped(character) : character))
    .join('');
  return characters.length > maxCharacters || window.length < content.length ? `${shown}…` : shown;
}

/**
 * One line of at most `maxCharacters` code points, safe to print on a terminal: reasons from the database can
 * span lines, and a message id or a reason can hold escape sequences or bidi overrides.
 */
export function oneLine(value: string, maxCharacters: number): string {
  return safeText(value.replace(/\s+/g, ' ').trim(), maxCharacters);
}

/**
 * The headers a replayed message is published with: the original ones without the dead-letter bookkeeping,
 * plus when it was replayed and how many times. `x-first-seen` stays, so the first failure is not forgotten.
 */
export function replayHeaders(headers: Headers | undefined, replayedAt: string): Headers {
  const kept = Object.fromEntries(
    Object.entries(headers ?? {}).filter(([name]) => !DEAD_LETTER_HEADERS.includes(name)),
  );
  const previousReplays = headers?.['x-replay-count'];
  return {
    ...kept,
    'x-replayed-at': replayedAt,
    'x-replay-count': (typeof previousReplays === 'number' ? previousReplays : 0) + 1,
  };
}

/** The original properties (see `republishedProperties`), persistent, with the replay headers. */
export function replayProperties(properties: MessageProperties, replayedAt: string): Options.Publish {
  return { ...republishedProperties(properties), headers: replayHeaders(properties.headers, replayedAt) };
}
