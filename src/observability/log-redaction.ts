// user:password@ in any URL-looking text (amqp://, postgresql://, http://…).
const CREDENTIALS_IN_URL = /\b([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]*):([^@/\s]+)@/gi;

/** Replaces the password of every URL in `text` with `***`. */
export function redactCredentials(text: string): string {
  return text.replace(CREDENTIALS_IN_URL, '$1$2:***@');
}

/** Redacts every string inside a log argument (objects and arrays to a small depth). */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactCredentials(value);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    const copy = new Error(redactCredentials(value.message));
    copy.name = value.name;
    if (value.stack) copy.stack = redactCredentials(value.stack);
    return Object.assign(copy, redactValue({ ...value }, depth + 1));
  }
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactValue(item, depth + 1)]));
}
