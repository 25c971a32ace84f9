import { z } from 'zod';

/**
 * The purchase message contract (docs/contract.md, "Message body") in one place: the schema and the type
 * inferred from it. The worker, the publisher and any API import it from here.
 */
export const USER_ID_MAX_CHARACTERS = 255;

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
