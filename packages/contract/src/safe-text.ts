/**
 * Text that came from a message (a pattern, a content type, a parser's quote of the body) made safe to quote
 * in a rejection reason: such a reason goes to AMQP headers, log lines, jsonb columns and terminals. Nothing is
 * dropped silently: each character that cannot go there is replaced by U+FFFD, so a reader sees that something
 * was there. The original bytes stay in the message itself.
 */
export const REPLACEMENT = '\uFFFD';
const ELLIPSIS = '…';

// Control characters (C0, DEL, C1: \p{Cc}), bidirectional marks, overrides and isolates (they reorder what a
// terminal or a log viewer shows: "Trojan Source"), and UTF-16 surrogates with no partner (\p{Cs} in u-mode).
const UNSAFE = /[\p{Cc}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]|\p{Cs}/gu;

/** The default longest text copied out of a message, in code points. */
export const MAX_COPIED_CODE_POINTS = 1000;

/**
 * `value` well-formed, with no NUL nor other control or bidi-control character, and at most `maxCodePoints`
 * code points (cut between code points, never inside a surrogate pair, with `…` to say it was cut).
 */
export function safeText(value: string, maxCodePoints = MAX_COPIED_CODE_POINTS): string {
  return cutToCodePoints(value.replace(UNSAFE, REPLACEMENT), maxCodePoints);
}

/** At most `maxCodePoints` code points of `value`; a cut text ends with `…` (counted in the limit). */
export function cutToCodePoints(value: string, maxCodePoints: number): string {
  // A string of at most maxCodePoints UTF-16 units has at most that many code points.
  if (value.length <= maxCodePoints) return value;
  const keep = Math.max(0, maxCodePoints - 1);
  let codePoints = 0;
  let cutAt = 0;
  for (let index = 0; index < value.length; codePoints++) {
    if (codePoints === keep) cutAt = index;
    if (codePoints === maxCodePoints) return value.slice(0, cutAt) + ELLIPSIS;
    index += isPairAt(value, index) ? 2 : 1;
  }
  return value;
}

function isPairAt(value: string, index: number): boolean {
  const high = value.charCodeAt(index);
  const low = value.charCodeAt(index + 1);
  return high >= 0xd800 && high <= 0xdbff && low >= 0xdc00 && low <= 0xdfff;
}
