import type { MessageProperties } from 'amqplib';
import type { Outcome, Rejection } from '../purchases/outcome.js';
import type { CommittedOrder } from './reply-order.lookup.js';

/**
 * What a request-response client is told once its message is settled (docs/nest.md, "The reply"): the
 * committed order, or why the message was dead-lettered.
 */
export type ReplyBody =
  | {
      status: 'confirmed' | 'duplicate';
      orderId: string;
      committedAt: string;
      saleId: string;
      userId: string;
    }
  | { status: 'rejected'; code: Rejection['code']; reason: string };

/** Where a reply goes: the request's `replyTo` (a routing key on the default exchange) and `correlationId`. */
export interface ReplyAddress {
  replyTo: string;
  correlationId: string;
}

/** A request that came in NestJS's envelope: the reply goes in Nest's packet, with the envelope's `id`. */
export interface NestRequest {
  id: string | undefined;
}

/** An AMQP short string (a routing key, a correlation id) holds at most 255 bytes. */
const SHORT_STRING_MAX_BYTES = 255;

/** The start of a NestJS client's envelope as it writes it (`JSON.stringify({pattern, data, id})`). */
const NEST_ENVELOPE_START = Buffer.from('{"pattern":');

/** Whether a message asked for a reply: read on the hot path, so only the one property is looked at. */
export function asksForReply(properties: MessageProperties): boolean {
  return properties.replyTo !== undefined;
}

/**
 * The message's reply address, or why it has none that can be replied to: both properties must be strings
 * the broker can carry back (1 to 255 bytes). What they hold otherwise (NUL, control characters, a queue
 * that does not exist) is the broker's to route: such a reply comes back unroutable.
 */
export function replyAddressOf(
  properties: MessageProperties,
): { ok: true; address: ReplyAddress } | { ok: false; problem: string } {
  const { replyTo, correlationId } = properties as { replyTo: unknown; correlationId: unknown };
  const problem =
    shortStringProblem('replyTo', replyTo) ?? shortStringProblem('correlationId', correlationId);
  if (problem) return { ok: false, problem };
  return { ok: true, address: { replyTo: replyTo as string, correlationId: correlationId as string } };
}

function shortStringProblem(name: string, value: unknown): string | undefined {
  if (value === undefined) return `it has no ${name}`;
  if (typeof value !== 'string') return `its ${name} is not a string`;
  if (value.length === 0) return `its ${name} is empty`;
  // A UTF-16 unit is at most 3 bytes: only a string that could be too long is measured.
  if (value.length * 3 > SHORT_STRING_MAX_BYTES) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > SHORT_STRING_MAX_BYTES) {
      return `its ${name} is ${bytes} bytes, over the ${SHORT_STRING_MAX_BYTES} an AMQP short string holds`;
    }
  }
  return undefined;
}

/**
 * Whether a body is NestJS's envelope, by the rule the purchase decoder reads it with (an object with its own
 * `pattern` and `data` and no `saleId`), and its `id`. Read only for messages that asked for a reply. A body
 * over `maxBytes` is not parsed (it was rejected unread): it is an envelope when it starts as Nest writes one.
 */
export function nestRequestOf(content: Buffer, maxBytes: number): NestRequest | undefined {
  if (content.length > maxBytes) {
    return content.subarray(0, NEST_ENVELOPE_START.length).equals(NEST_ENVELOPE_START)
      ? { id: undefined }
      : undefined;
  }
  let body: unknown;
  try {
    body = JSON.parse(content.toString('utf8'));
  } catch {
    return undefined; // not JSON: a plain message, rejected as such
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  if (!Object.hasOwn(body, 'pattern') || !Object.hasOwn(body, 'data') || Object.hasOwn(body, 'saleId')) {
    return undefined;
  }
  const { id } = body as { id?: unknown };
  return { id: typeof id === 'string' ? id : undefined };
}

/** The reply to a settled outcome: the committed order for confirmed / duplicate, the reason for rejected. */
export function replyBodyOf(
  outcome: Extract<Outcome, { kind: 'confirmed' | 'duplicate' | 'rejected' }>,
  order: CommittedOrder | undefined,
): ReplyBody {
  if (outcome.kind === 'rejected') {
    return { status: 'rejected', code: outcome.rejection.code, reason: outcome.rejection.reason };
  }
  if (!order) throw new Error('a reply to a committed purchase needs its order');
  return {
    status: outcome.kind,
    orderId: order.id,
    committedAt: order.committedAt.toISOString(),
    saleId: outcome.purchase.saleId,
    userId: outcome.purchase.userId,
  };
}

/**
 * The bytes of a reply. Plain JSON for a plain request; for a Nest request, the packet NestJS's RMQ server
 * sends (`{response, isDisposed}`, or `{err, isDisposed}` for a rejection), so that `client.send()` emits
 * the reply and completes, or errors with it.
 */
export function replyContent(body: ReplyBody, nest: NestRequest | undefined): Buffer {
  if (!nest) return Buffer.from(JSON.stringify(body));
  const packet: { id?: string; response?: ReplyBody; err?: ReplyBody; isDisposed: true } =
    body.status === 'rejected' ? { err: body, isDisposed: true } : { response: body, isDisposed: true };
  if (nest.id !== undefined) packet.id = nest.id;
  return Buffer.from(JSON.stringify(packet));
}
