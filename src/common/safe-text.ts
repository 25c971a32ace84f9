import { inspect } from 'node:util';
import { cutToCodePoints, MAX_COPIED_CODE_POINTS, REPLACEMENT, safeText } from '@flashsale/contract';

/**
 * Text that came from a message (a userId, a messageId, a content type, a parser's quote of the body) made
 * safe for the places it is copied to: jsonb and text columns (PostgreSQL refuses NUL and lone surrogates),
 * AMQP headers, log lines and metric labels. Nothing is dropped silently: each character that cannot go
 * there is replaced by U+FFFD, so a reader sees that something was there. The original bytes stay in the
 * message itself (the dead-letter copy keeps the body and properties as received). safeText and its cut
 * are the message contract's (packages/contract/src/safe-text.ts): rejection reasons quote message text
 * through them, in the worker and in every other reader of the contract.
 */
export { cutToCodePoints, MAX_COPIED_CODE_POINTS, REPLACEMENT, safeText };

// The same characters as safeText replaces, but line breaks and tabs are kept: stack traces and multi-line
// messages in logs stay readable (a JSON log line escapes them anyway).
const UNSAFE_IN_LOGS = /(?![\n\r\t])[\p{Cc}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]|\p{Cs}/gu;

/** For log lines: like `safeText` but keeps line breaks and tabs, and does not cut. */
export function safeLogText(value: string): string {
  return value.replace(UNSAFE_IN_LOGS, REPLACEMENT);
}

/** A message property or header value as safe text, or undefined when absent. */
export function safeProperty(value: unknown, maxCodePoints = 255): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return safeText(value, maxCodePoints);
  if (Buffer.isBuffer(value)) return safeText(value.toString('utf8'), maxCodePoints);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  // inspect, not JSON.stringify: it never throws (a bigint, a cycle) and shows a header table as it is.
  return safeText(inspect(value, { depth: 2, breakLength: Infinity }), maxCodePoints);
}

const LONE_SURROGATE = /\p{Cs}/gu;

/**
 * `value` as PostgreSQL's text and jsonb take it: NUL and lone surrogates replaced, nothing else changed (a
 * valid userId may hold a line break, and its audit row must name the order it belongs to).
 */
export function storableText(value: string): string {
  return value.replaceAll('\u0000', REPLACEMENT).replace(LONE_SURROGATE, REPLACEMENT);
}

/** Every string (keys included) of a JSON-ready value made storable; the value itself is not changed. */
export function storableJson(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (Array.isArray(value)) return value.map(storableJson);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [storableText(key), storableJson(item)]),
    );
  }
  return value;
}

/**
 * The UTF-16 code units of `value` as hex, four digits each, at most `maxUnits` of them: an exact record of a
 * string that cannot be stored as text (a lone surrogate has no UTF-8 form to show).
 */
export function codeUnitsHex(value: string, maxUnits = 256): string {
  let hex = '';
  for (let index = 0; index < Math.min(value.length, maxUnits); index++) {
    hex += value.charCodeAt(index).toString(16).padStart(4, '0');
  }
  return hex;
}
