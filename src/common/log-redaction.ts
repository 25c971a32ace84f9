import { safeLogText } from './safe-text.js';

// The userinfo of any URL-looking text (amqp://, postgresql://, http://…): everything between `scheme://` and
// the last @ before the path, as WHATWG URL parsers read it, so a user name like `admin@server` (Azure) or an
// unencoded @ in a password is still caught. Quotes and whitespace end it: URLs sit inside messages and JSON.
const USERINFO_IN_URL = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/"'<>`]*)@/gi;

// Objects nested deeper than this are cut off rather than walked: log arguments are small, and an
// unwalked object would reach the log line unredacted.
const MAX_DEPTH = 8;
const TOO_DEEP = '[too deep to log]';
const CIRCULAR = '[circular]';

/** Replaces the password of every URL in `text` with `***`; a user without a password is left as is. */
export function redactCredentials(text: string): string {
  return text.replace(USERINFO_IN_URL, (whole, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon < 0 ? whole : `${scheme}${userinfo.slice(0, colon)}:***@`;
  });
}

/**
 * A copy of a log argument with every string redacted and made safe to show (NUL, escape sequences, bidi
 * overrides and lone surrogates replaced: a userId can hold any of them): objects, arrays, errors (message, stack, cause,
 * aggregated errors and context fields, class kept), URLs and anything with `toJSON`. The argument itself
 * is not changed.
 */
export function redactValue(value: unknown): unknown {
  return redact(value, 0, new WeakSet());
}

function redact(value: unknown, depth: number, ancestors: WeakSet<object>): unknown {
  if (typeof value === 'string') return safeLogText(redactCredentials(value));
  if (value === null || typeof value !== 'object') return value;
  if (ancestors.has(value)) return CIRCULAR;
  if (depth >= MAX_DEPTH) return TOO_DEEP;
  ancestors.add(value);
  try {
    if (value instanceof Error) return redactError(value, depth, ancestors);
    if (Array.isArray(value)) return value.map((item: unknown) => redact(item, depth + 1, ancestors));
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    // What the log line would hold anyway (a Date's ISO string, a URL's href), redacted.
    if (typeof toJSON === 'function') return redact(toJSON.call(value), depth + 1, ancestors);
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [safeLogText(key), redact(item, depth + 1, ancestors)]),
    );
  } finally {
    ancestors.delete(value);
  }
}

/** A copy of the same class with every own property (message, stack, cause, errors, context) redacted. */
function redactError(error: Error, depth: number, ancestors: WeakSet<object>): Error {
  const copy = Object.create(Object.getPrototypeOf(error) as object) as Error;
  for (const key of Object.getOwnPropertyNames(error)) {
    const descriptor = Object.getOwnPropertyDescriptor(error, key);
    Object.defineProperty(copy, key, {
      value: redact((error as unknown as Record<string, unknown>)[key], depth + 1, ancestors),
      enumerable: descriptor?.enumerable ?? true,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}
