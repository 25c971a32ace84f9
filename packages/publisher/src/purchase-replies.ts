import type { ConsumeMessage } from 'amqplib';
import {
  InvalidReplyError,
  PurchasePublishError,
  PurchaseRejectedError,
  PurchaseReplyTimeoutError,
} from './publisher-errors.js';

/** RabbitMQ's direct reply-to: a reply goes straight to the channel that consumes this pseudo-queue. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/** The order a `request` resolves with: the worker committed it (`confirmed`) or had it already (`duplicate`). */
export interface PurchaseOutcome {
  status: 'confirmed' | 'duplicate';
  orderId: string;
  /** When the order was committed (for a duplicate: the first purchase's order). */
  committedAt: Date;
  saleId: string;
  userId: string;
}

type ReadReply =
  | { kind: 'outcome'; outcome: PurchaseOutcome }
  | { kind: 'rejected'; code: string; reason: string }
  | { kind: 'unreadable'; problem: string };

const text = (value: unknown): value is string => typeof value === 'string';

/**
 * The worker's plain-JSON reply: `{"status":"confirmed"|"duplicate","orderId","committedAt","saleId","userId"}`
 * or `{"status":"rejected","code","reason"}`.
 */
export function readReply(content: Buffer): ReadReply {
  let body: unknown;
  try {
    body = JSON.parse(content.toString('utf8'));
  } catch (error) {
    return { kind: 'unreadable', problem: `not JSON (${(error as Error).message})` };
  }
  if (typeof body !== 'object' || body === null) return { kind: 'unreadable', problem: 'not a JSON object' };
  const { status, orderId, committedAt, saleId, userId, code, reason } = body as Record<string, unknown>;
  if (status === 'rejected') {
    if (!text(code) || !text(reason))
      return { kind: 'unreadable', problem: 'a rejection without code or reason' };
    return { kind: 'rejected', code, reason };
  }
  if (status !== 'confirmed' && status !== 'duplicate') {
    return { kind: 'unreadable', problem: `unknown status ${JSON.stringify(status) ?? 'undefined'}` };
  }
  const committed = text(committedAt) ? new Date(committedAt) : undefined;
  if (!text(orderId) || !committed || Number.isNaN(committed.getTime()) || !text(saleId) || !text(userId)) {
    return {
      kind: 'unreadable',
      problem: `a ${status} reply without orderId, committedAt, saleId or userId`,
    };
  }
  return { kind: 'outcome', outcome: { status, orderId, committedAt: committed, saleId, userId } };
}

interface Waiter {
  messageId: string;
  resolve(outcome: PurchaseOutcome): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * The requests awaiting their reply, by correlation id. The first reply to a request settles it; a later one
 * (the worker replies again to a redelivered message) finds nobody waiting and is dropped.
 */
export class PendingReplies {
  private readonly waiting = new Map<string, Waiter>();
  private readonly emptied: (() => void)[] = [];

  constructor(private readonly queue: string) {}

  get size(): number {
    return this.waiting.size;
  }

  /** A promise of the reply to `correlationId`; rejects with PurchaseReplyTimeoutError after `timeoutMs`. */
  expect(correlationId: string, messageId: string, timeoutMs: number): Promise<PurchaseOutcome> {
    return new Promise<PurchaseOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(correlationId)?.reject(
          new PurchaseReplyTimeoutError(this.queue, messageId, correlationId, timeoutMs),
        );
      }, timeoutMs);
      this.waiting.set(correlationId, { messageId, resolve, reject, timer });
    });
  }

  /** Ends the wait for `correlationId` with `error` (its publish failed, or the publisher closed). */
  fail(correlationId: string, error: Error): void {
    this.settle(correlationId)?.reject(error);
  }

  failAll(error: PurchasePublishError): void {
    for (const correlationId of [...this.waiting.keys()]) this.fail(correlationId, error);
  }

  /** Resolves once no request awaits a reply. */
  whenEmpty(): Promise<void> {
    if (this.waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptied.push(resolve));
  }

  /** Every message delivered on the direct reply-to consumer (null when the broker cancelled it). */
  receive(message: ConsumeMessage | null): void {
    if (!message) return; // the channel is going away; the next one consumes again
    const correlationId: unknown = message.properties.correlationId;
    if (typeof correlationId !== 'string') return;
    const waiter = this.settle(correlationId);
    if (!waiter) return; // a second reply, or one past its timeout
    const reply = readReply(message.content);
    if (reply.kind === 'outcome') waiter.resolve(reply.outcome);
    else if (reply.kind === 'rejected') {
      waiter.reject(new PurchaseRejectedError(this.queue, waiter.messageId, reply.code, reply.reason));
    } else waiter.reject(new InvalidReplyError(this.queue, waiter.messageId, reply.problem));
  }

  private settle(correlationId: string): Waiter | undefined {
    const waiter = this.waiting.get(correlationId);
    if (!waiter) return undefined;
    clearTimeout(waiter.timer);
    this.waiting.delete(correlationId);
    if (this.waiting.size === 0) for (const wake of this.emptied.splice(0)) wake();
    return waiter;
  }
}
