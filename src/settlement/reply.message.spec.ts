import { describe, expect, it } from '@jest/globals';
import type { MessageProperties } from 'amqplib';
import type { Outcome } from '../purchases/outcome.js';
import { nestRequestOf, replyAddressOf, replyBodyOf, replyContent } from './reply.message.js';

const properties = (overrides: Record<string, unknown>) =>
  ({ headers: {}, ...overrides }) as unknown as MessageProperties;
const purchase = { saleId: '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11', userId: 'user-1', timestamp: new Date() };
const order = {
  id: '0b7c8f43-6a0e-4d8e-9d5e-2f4a1c3b5d6e',
  committedAt: new Date('2026-12-01T10:00:00.123Z'),
};

describe('replyAddressOf', () => {
  it.each([
    ['a queue name', 'replies', 'c-1'],
    ['a direct reply-to name', 'amq.rabbitmq.reply-to.g1h2AA==', 'c-1'],
    ['NUL and control characters (routed, or returned, by the broker)', 'a\u0000b\u0001\u001b[2J', 'c\u0000'],
    ['255 bytes of multi-byte characters', 'é'.repeat(127) + 'x', 'x'.repeat(255)],
  ])('accepts %s', (_what, replyTo, correlationId) => {
    expect(replyAddressOf(properties({ replyTo, correlationId }))).toEqual({
      ok: true,
      address: { replyTo, correlationId },
    });
  });

  it.each([
    ['no correlationId', { replyTo: 'replies' }, 'it has no correlationId'],
    ['an empty replyTo', { replyTo: '', correlationId: 'c' }, 'its replyTo is empty'],
    ['a replyTo that is not a string', { replyTo: 42, correlationId: 'c' }, 'its replyTo is not a string'],
    [
      'a replyTo of a megabyte',
      { replyTo: 'q'.repeat(1 << 20), correlationId: 'c' },
      'its replyTo is 1048576 bytes, over the 255 an AMQP short string holds',
    ],
    [
      'a replyTo of 128 two-byte characters (256 bytes)',
      { replyTo: 'é'.repeat(128), correlationId: 'c' },
      'its replyTo is 256 bytes, over the 255 an AMQP short string holds',
    ],
    [
      'a correlationId of a megabyte',
      { replyTo: 'q', correlationId: 'c'.repeat(1 << 20) },
      'its correlationId is 1048576 bytes, over the 255 an AMQP short string holds',
    ],
  ])('refuses %s, saying why', (_what, props, problem) => {
    expect(replyAddressOf(properties(props))).toEqual({ ok: false, problem });
  });
});

describe('nestRequestOf', () => {
  const body = (value: unknown) => Buffer.from(JSON.stringify(value));

  it("tells NestJS's envelope of send() and its id", () => {
    expect(nestRequestOf(body({ pattern: 'purchase', data: purchase, id: 'abc' }), 16_384)).toEqual({
      id: 'abc',
    });
  });

  it('tells an envelope without an id, or with one that is not a string', () => {
    expect(nestRequestOf(body({ pattern: 'other', data: 1 }), 16_384)).toEqual({ id: undefined });
    expect(nestRequestOf(body({ pattern: 'p', data: {}, id: 7 }), 16_384)).toEqual({ id: undefined });
  });

  it.each([
    ['a plain purchase', body(purchase)],
    ['a plain purchase carrying pattern and data fields', body({ ...purchase, pattern: 'x', data: {} })],
    ['a body with a pattern and no data', body({ pattern: 'purchase' })],
    ['an array', body([{ pattern: 'p', data: {} }])],
    ['not JSON', Buffer.from('{"pattern":')],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
  ])('reads %s as a plain request', (_what, content) => {
    expect(nestRequestOf(content, 16_384)).toBeUndefined();
  });

  it('does not parse a body over the limit, but knows the start NestJS writes', () => {
    const large = body({ pattern: 'purchase', data: { userId: 'u'.repeat(100) } });
    expect(nestRequestOf(large, 64)).toEqual({ id: undefined });
    expect(nestRequestOf(body({ data: 'u'.repeat(100), pattern: 'purchase' }), 64)).toBeUndefined();
  });
});

describe('replyContent', () => {
  const confirmed: Outcome = { kind: 'confirmed', purchase, committedAt: new Date() };
  const rejected: Outcome = { kind: 'rejected', rejection: { code: 'NOT_JSON', reason: 'body is empty' } };
  const plainConfirmed = {
    status: 'confirmed',
    orderId: order.id,
    committedAt: '2026-12-01T10:00:00.123Z',
    saleId: purchase.saleId,
    userId: 'user-1',
  };
  const read = (content: Buffer): unknown => JSON.parse(content.toString());

  it('is plain JSON for a plain request: the order for a committed purchase, the reason for a rejection', () => {
    expect(read(replyContent(replyBodyOf(confirmed, order), undefined))).toEqual(plainConfirmed);
    expect(read(replyContent(replyBodyOf(rejected, undefined), undefined))).toEqual({
      status: 'rejected',
      code: 'NOT_JSON',
      reason: 'body is empty',
    });
  });

  it("is NestJS's packet for a Nest request: response for an order, err for a rejection", () => {
    expect(read(replyContent(replyBodyOf(confirmed, order), { id: 'abc' }))).toEqual({
      id: 'abc',
      response: plainConfirmed,
      isDisposed: true,
    });
    expect(read(replyContent(replyBodyOf(rejected, undefined), { id: undefined }))).toEqual({
      err: { status: 'rejected', code: 'NOT_JSON', reason: 'body is empty' },
      isDisposed: true,
    });
  });

  it('names a duplicate as such, with the order that exists', () => {
    const duplicate: Outcome = { kind: 'duplicate', purchase, committedAt: new Date() };
    expect(replyBodyOf(duplicate, order)).toMatchObject({ status: 'duplicate', orderId: order.id });
  });

  it('refuses to answer a committed purchase without its order', () => {
    expect(() => replyBodyOf(confirmed, undefined)).toThrow('needs its order');
  });
});
