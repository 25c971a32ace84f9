import { z } from 'zod';
import { safeText } from '../common/safe-text.js';

/**
 * The purchase message contract (docs/contract.md, "Message body") in one place: the schema, the type inferred
 * from it, and the reasons a message is rejected. Everything else imports it.
 */
const USER_ID_MAX_CHARACTERS = 255;

/** A UUID in its 8-4-4-4-12 hex form, either case (read a character at a time: no expression, no copy). */
function isUuid(value: string): boolean {
  if (value.length !== 36) return false;
  for (let index = 0; index < 36; index++) {
    const code = value.charCodeAt(index);
    if (index === 8 || index === 13 || index === 18 || index === 23) {
      if (code !== 0x2d) return false; // '-'
    } else if (!isHexDigit(code)) {
      return false;
    }
  }
  return true;
}

function isHexDigit(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) || // 0-9
    (code >= 0x61 && code <= 0x66) || // a-f
    (code >= 0x41 && code <= 0x46) // A-F
  );
}

// ISO 8601 date-time with an explicit zone: a purchase time without one is ambiguous.
const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0);
}

/** A month, day, hour, minute and second that exist (fields already known to be whole and not negative). */
function inCalendar(year: number, month: number, day: number, hour: number, minute: number, second: number) {
  return (
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth(year, month) &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59
  );
}

/** The form of an ISO 8601 date-time with a zone, and a day, hour, minute and second that exist. */
function hasCalendarFields(value: string): boolean {
  const match = ISO_DATE_TIME.exec(value);
  if (!match) return false;
  const field = (index: number) => Number(match[index] ?? 0); // seconds may be left out
  return inCalendar(field(1), field(2), field(3), field(4), field(5), field(6));
}

function isCalendarDateTime(value: string): boolean {
  return hasCalendarFields(value) && !Number.isNaN(Date.parse(value));
}

const noNul = (value: string) => !value.includes('\u0000');
// A lone UTF-16 surrogate has no UTF-8 form: the database would store U+FFFD in its place, and two different
// userIds could then collapse onto one order.
const wellFormed = (value: string) => value.isWellFormed();
// PostgreSQL refuses year 0 (1 BC) as the driver sends it; no purchase is that old anyway.
const EARLIEST_PURCHASE_MS = Date.parse('0001-01-01T00:00:00Z');
const notBeforeYearOne = (value: string) => {
  const ms = Date.parse(value);
  return Number.isNaN(ms) || ms >= EARLIEST_PURCHASE_MS; // an unreadable date is the previous rule's to report
};

const nonEmpty = (value: string) => value.length > 0;
// Code points, not UTF-16 units; a string of few enough units needs no counting.
const withinLength = (value: string) =>
  value.length <= USER_ID_MAX_CHARACTERS || [...value].length <= USER_ID_MAX_CHARACTERS;

export const purchaseSchema = z.object({
  saleId: z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .refine(isUuid, 'must be a UUID')
    .transform((value) => value.toLowerCase()),
  userId: z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .refine(nonEmpty, 'must not be empty')
    .refine(withinLength, `must be at most ${USER_ID_MAX_CHARACTERS} characters`)
    .refine(noNul, 'must not contain a NUL character')
    .refine(wellFormed, 'must be valid Unicode (it holds a lone surrogate)'),
  timestamp: z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .refine(isCalendarDateTime, 'must be an ISO 8601 date-time with a zone, e.g. 2026-11-22T10:00:00.000Z')
    .refine(notBeforeYearOne, 'must not be before the year 0001')
    .transform((value) => new Date(value)),
});

/** A valid purchase: saleId lower-cased (PostgreSQL compares UUIDs that way), timestamp as a Date. */
export type Purchase = z.output<typeof purchaseSchema>;

/**
 * The same rules as `purchaseSchema`, through the same predicates, for the body that passes them all: the
 * usual case is checked without building zod's result objects. Undefined means "ask the schema", which then
 * says what is wrong; the schema stays the one authority (a property test holds the two to agreement).
 */
export function validPurchase(body: object): Purchase | undefined {
  const { saleId, userId, timestamp } = body as Record<string, unknown>;
  if (typeof saleId !== 'string' || !isUuid(saleId)) return undefined;
  if (typeof userId !== 'string' || !nonEmpty(userId) || !withinLength(userId)) return undefined;
  if (!noNul(userId) || !wellFormed(userId)) return undefined;
  if (typeof timestamp !== 'string') return undefined;
  let ms = canonicalTimestampMs(timestamp);
  if (ms === undefined) {
    if (!hasCalendarFields(timestamp)) return undefined;
    ms = Date.parse(timestamp); // once: the checks of isCalendarDateTime and notBeforeYearOne, and the Date
  }
  if (Number.isNaN(ms) || ms < EARLIEST_PURCHASE_MS) return undefined;
  return { saleId: saleId.toLowerCase(), userId, timestamp: new Date(ms) };
}

const CANONICAL_FORM = 'YYYY-MM-DDTHH:MM:SS.sssZ';
const CANONICAL_LENGTH = CANONICAL_FORM.length;
/** [position, character code] of each separator of the canonical form. */
const CANONICAL_SEPARATORS: readonly (readonly [number, number])[] = [...CANONICAL_FORM]
  .map((char, index) => [index, char.charCodeAt(0)] as const)
  .filter(([index]) => !'YMDHSs'.includes(CANONICAL_FORM[index] as string));

/**
 * The epoch milliseconds of a timestamp in the form `Date.prototype.toISOString` writes
 * (YYYY-MM-DDTHH:MM:SS.sssZ, a year from 0100), read a character at a time: what `Date.parse` gives it, NaN
 * when a field is out of its calendar range (30 February, hour 24). Undefined for every other form, which the
 * expression and `Date.parse` read instead.
 */
function canonicalTimestampMs(value: string): number | undefined {
  if (value.length !== CANONICAL_LENGTH) return undefined;
  for (const [index, code] of CANONICAL_SEPARATORS) if (value.charCodeAt(index) !== code) return undefined;
  const year = digits(value, 0, 4);
  const month = digits(value, 5, 2);
  const day = digits(value, 8, 2);
  const hour = digits(value, 11, 2);
  const minute = digits(value, 14, 2);
  const second = digits(value, 17, 2);
  const millisecond = digits(value, 20, 3);
  // Date.UTC reads a year below 100 as 19xx: such years take the general path.
  if (year < 100 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0 || millisecond < 0) {
    return undefined;
  }
  return inCalendar(year, month, day, hour, minute, second)
    ? Date.UTC(year, month - 1, day, hour, minute, second, millisecond)
    : NaN;
}

/** The number written by `count` ASCII digits from `start`, or -1 when one of them is not a digit. */
function digits(value: string, start: number, count: number): number {
  let number = 0;
  for (let index = start; index < start + count; index++) {
    const digit = value.charCodeAt(index) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    number = number * 10 + digit;
  }
  return number;
}

/** Why a message was rejected: a stable code for counting and a sentence a person understands. */
export interface Rejection {
  code: RejectionCode;
  reason: string;
  /** The saleId and userId strings an invalid body did carry, for logs and the audit details. */
  identifiers?: { saleId?: string; userId?: string };
}

export type RejectionCode =
  | 'BODY_TOO_LARGE'
  | 'WRONG_CONTENT_TYPE'
  | 'INVALID_UTF8'
  | 'NOT_JSON'
  | 'NOT_AN_OBJECT'
  | 'UNKNOWN_PATTERN'
  | 'INVALID_FIELDS'
  | 'REFUSED_BY_DATABASE'
  | 'DELIVERY_LIMIT';

/** The pattern a NestJS client names a purchase with (`client.emit('purchase', …)`); PURCHASE_PATTERN. */
export const DEFAULT_PURCHASE_PATTERN = 'purchase';

/**
 * A body that came in NestJS's envelope (`{"pattern", "data", "id"?}`): what the reply to it needs. `id` is
 * the envelope's own, as sent (`client.send()` sets one, `client.emit()` none); quote it safe before logging.
 */
export interface NestEnvelope {
  id: string | undefined;
}

/** `envelope` is set when the body was a NestJS envelope, for a valid purchase and a rejected one alike. */
export type ParseResult =
  | { ok: true; purchase: Purchase; envelope?: NestEnvelope }
  | { ok: false; rejection: Rejection; envelope?: NestEnvelope };

const JSON_CONTENT_TYPE = /^application\/([\w.+-]+\+)?json\s*(;.*)?$/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A rejection; its reason may quote the message (a parser's excerpt, a content type), so it is made safe. */
function reject(code: RejectionCode, reason: string): ParseResult {
  return { ok: false, rejection: { code, reason: safeText(reason) } };
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/**
 * Turns a message body into a purchase, or says exactly what is wrong with it.
 * `contentType` is the AMQP property; a message without one is read as JSON. The body is either the purchase
 * itself or NestJS's envelope around it (see `isNestEnvelope`), whose pattern must be `pattern`.
 * `maxBytes` bounds the whole body, envelope included.
 */
export function parsePurchase(
  body: Buffer,
  contentType: string | undefined,
  maxBytes: number,
  pattern: string = DEFAULT_PURCHASE_PATTERN,
): ParseResult {
  if (body.length > maxBytes) {
    return reject('BODY_TOO_LARGE', `body is ${body.length} bytes, over the limit of ${maxBytes} bytes`);
  }
  if (
    contentType !== undefined &&
    contentType !== '' &&
    contentType !== 'application/json' &&
    !JSON_CONTENT_TYPE.test(contentType)
  ) {
    return reject(
      'WRONG_CONTENT_TYPE',
      `content type is "${safeText(contentType, 100)}", expected application/json`,
    );
  }
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return reject('INVALID_UTF8', 'body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    if (text.trim() === '') return reject('NOT_JSON', 'body is empty');
    return reject('NOT_JSON', `body is not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return reject('NOT_AN_OBJECT', `body is ${describeType(value)}, expected a JSON object`);
  }
  // The plain body first: a valid one has a saleId, so it is never an envelope, and pays for nothing more.
  const purchase = validPurchase(value);
  if (purchase) return { ok: true, purchase };
  if (isNestEnvelope(value)) return parseEnvelope(value, pattern);
  return invalidFields(value, undefined);
}

/**
 * NestJS's envelope: an object with its own `pattern` and `data` keys and no `saleId` of its own. A body with
 * a saleId is a plain purchase whatever else it carries (an extra `pattern` or `data` field is ignored, as
 * every unknown field is); a body with a `pattern` but no `data` is a plain body, and is told what it lacks.
 */
function isNestEnvelope(body: object): body is { pattern: unknown; data: unknown; id?: unknown } {
  return Object.hasOwn(body, 'pattern') && Object.hasOwn(body, 'data') && !Object.hasOwn(body, 'saleId');
}

/** The purchase in an envelope's `data`, under the same rules, when the envelope names the purchase pattern. */
function parseEnvelope(
  body: { pattern: unknown; data: unknown; id?: unknown },
  pattern: string,
): ParseResult {
  const envelope: NestEnvelope = { id: typeof body.id === 'string' ? body.id : undefined };
  const { data } = body;
  let result: ParseResult;
  if (typeof body.pattern !== 'string') {
    result = reject(
      'UNKNOWN_PATTERN',
      `envelope pattern is ${describeType(body.pattern)}, expected the string "${safeText(pattern, 100)}"`,
    );
  } else if (body.pattern !== pattern) {
    result = reject(
      'UNKNOWN_PATTERN',
      `envelope pattern is "${safeText(body.pattern, 100)}", expected "${safeText(pattern, 100)}"`,
    );
  } else if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    result = reject('NOT_AN_OBJECT', `envelope data is ${describeType(data)}, expected a JSON object`);
  } else {
    const purchase = validPurchase(data);
    result = purchase ? { ok: true, purchase } : invalidFields(data, 'data');
  }
  result.envelope = envelope;
  return result;
}

/** Zod's reason for each rule `body` breaks; `within` names the field the body sits in (`data`), if any. */
function invalidFields(body: object, within: string | undefined): ParseResult {
  const parsed = purchaseSchema.safeParse(body);
  if (parsed.success) return { ok: true, purchase: parsed.data };
  const at = within === undefined ? [] : [within];
  const problems = parsed.error.issues.map(
    (issue) => `${[...at, ...issue.path].join('.') || 'body'} ${issue.message}`,
  );
  return {
    ok: false,
    rejection: {
      code: 'INVALID_FIELDS',
      reason: safeText(problems.join('; ')),
      identifiers: readableIds(body),
    },
  };
}

/**
 * The saleId and userId of an invalid body when they are strings, made safe for logs, headers and jsonb
 * (NUL and lone surrogates replaced) and cut by code points to a loggable length.
 */
function readableIds(body: object): Rejection['identifiers'] {
  const identifiers: NonNullable<Rejection['identifiers']> = {};
  const { saleId, userId } = body as { saleId?: unknown; userId?: unknown };
  if (typeof saleId === 'string' && Object.hasOwn(body, 'saleId')) identifiers.saleId = safeText(saleId, 64);
  if (typeof userId === 'string' && Object.hasOwn(body, 'userId')) {
    identifiers.userId = safeText(userId, USER_ID_MAX_CHARACTERS);
  }
  return identifiers;
}
