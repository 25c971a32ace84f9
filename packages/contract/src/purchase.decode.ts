import { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_PURCHASE_PATTERN } from './names.js';
import { type Purchase, purchaseSchema, USER_ID_MAX_CHARACTERS, validPurchase } from './purchase.schema.js';
import { safeText } from './safe-text.js';

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

/**
 * A body that came in NestJS's envelope (`{"pattern", "data", "id"?}`): what the reply to it needs. `id` is
 * the envelope's own, as sent (`client.send()` sets one, `client.emit()` none); quote it safe before logging.
 */
export interface NestEnvelope {
  id: string | undefined;
}

/** `envelope` is set when the body was a NestJS envelope, for a valid purchase and a rejected one alike. */
export type DecodeResult =
  | { ok: true; purchase: Purchase; envelope?: NestEnvelope }
  | { ok: false; rejection: Rejection; envelope?: NestEnvelope };

const JSON_CONTENT_TYPE = /^application\/([\w.+-]+\+)?json\s*(;.*)?$/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A rejection; its reason may quote the message (a parser's excerpt, a content type), so it is made safe. */
function reject(code: RejectionCode, reason: string): DecodeResult {
  return { ok: false, rejection: { code, reason: safeText(reason) } };
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

export interface DecodeOptions {
  /** The message's AMQP `content-type`; absent or empty is read as JSON. */
  contentType?: string | undefined;
  /** Largest body accepted, envelope included, in bytes (the worker's MAX_MESSAGE_BYTES). Default 16 KiB. */
  maxBytes?: number;
  /** Pattern of a NestJS envelope whose `data` is a purchase (the worker's PURCHASE_PATTERN). Default `purchase`. */
  pattern?: string;
}

/**
 * Turns a message body into a purchase, or says exactly what is wrong with it: the worker's reading of every
 * message. The body is either the purchase itself or NestJS's envelope around it (see `isNestEnvelope`).
 */
export function decodePurchase(body: Uint8Array, options: DecodeOptions = {}): DecodeResult {
  const { contentType, maxBytes = DEFAULT_MAX_MESSAGE_BYTES, pattern = DEFAULT_PURCHASE_PATTERN } = options;
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
): DecodeResult {
  const envelope: NestEnvelope = { id: typeof body.id === 'string' ? body.id : undefined };
  const { data } = body;
  let result: DecodeResult;
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
function invalidFields(body: object, within: string | undefined): DecodeResult {
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
