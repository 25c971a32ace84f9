import { safeText } from '../common/safe-text.js';

// Parameters whose value may be a secret: never shown in a message.
const SECRET = new Set(['sslpassword', 'password', 'user']);

/** Control characters: refused in a schema, an application name or options (NUL would end a protocol string). */
export const CONTROL = /\p{Cc}/u;

/** `name=value` as DATABASE_URL's problems show it: quoted, cut, without control characters; secrets hidden. */
export function shownParameter(name: string, value: string): string {
  const shownName = JSON.stringify(safeText(name, 64)).slice(1, -1);
  return SECRET.has(name)
    ? `${shownName} (value hidden)`
    : `${shownName}=${JSON.stringify(safeText(value, 100))}`;
}
