import { describe, expect, it } from '@jest/globals';
import type { Message, MessageProperties } from 'amqplib';
import type { DeadLetterListing } from './dead-letter.admin.js';
import {
  bodyPreview,
  firstSeenOf,
  NO_REASON,
  oneLine,
  rejectionOf,
  replayHeaders,
  replayProperties,
} from './dead-letter.inspection.js';
import { formatListing } from './listing.format.js';

function message(
  headers: Record<string, unknown> | undefined,
  properties: Partial<MessageProperties> = {},
): Message {
  return {
    content: Buffer.from('{}'),
    fields: {},
    properties: { headers, ...properties },
  } as unknown as Message;
}

/** x-death as amqplib decodes it: the time is an AMQP timestamp in seconds. */
const death = (reason: string, seconds: number) => [
  { count: 1, reason, queue: 'purchase', time: { '!': 'timestamp', value: seconds }, exchange: '' },
];

describe('rejectionOf', () => {
  it.each([
    [
      'the worker wrote a reason',
      { 'x-rejection-reason': 'saleId is required', 'x-rejection-code': 'INVALID_FIELDS' },
      { reason: 'saleId is required', code: 'INVALID_FIELDS' },
    ],
    [
      'the broker dead-lettered it at the delivery limit',
      { 'x-death': death('delivery_limit', 1) },
      { reason: 'delivery_limit', code: 'broker' },
    ],
    [
      'only the first-death header is left',
      { 'x-first-death-reason': 'expired' },
      { reason: 'expired', code: 'broker' },
    ],
    [
      'the worker rejected it after the broker had',
      { 'x-rejection-reason': 'r', 'x-death': death('rejected', 1) },
      { reason: 'r', code: undefined },
    ],
    ['nobody said why', {}, { reason: NO_REASON, code: undefined }],
    ['it has no headers at all', undefined, { reason: NO_REASON, code: undefined }],
  ])('when %s', (_case, headers, expected) => {
    expect(rejectionOf(message(headers))).toEqual(expected);
  });
});

describe('firstSeenOf', () => {
  it("prefers the worker's x-first-seen", () => {
    const headers = { 'x-first-seen': '2026-11-22T10:00:00.000Z', 'x-death': death('delivery_limit', 1) };
    expect(firstSeenOf(message(headers))?.toISOString()).toBe('2026-11-22T10:00:00.000Z');
  });

  it("falls back to the broker's death time, then to the publish timestamp", () => {
    expect(firstSeenOf(message({ 'x-death': death('delivery_limit', 1_795_000_000) }))?.getTime()).toBe(
      1_795_000_000_000,
    );
    expect(firstSeenOf(message({}, { timestamp: 1_795_000_001 }))?.getTime()).toBe(1_795_000_001_000);
    expect(firstSeenOf(message({ 'x-first-seen': 'not a date' }))).toBeUndefined();
  });
});

describe('replayHeaders', () => {
  const deadLetterHeaders = {
    'x-rejection-reason': 'database refused the order',
    'x-rejection-code': 'REFUSED_BY_DATABASE',
    'x-rejected-by': 'worker-1',
    'x-original-queue': 'purchase',
    'x-publish-id': '0b7e4f0e-3c55-4e0a-9d6b-1f4b0c1e2d3a',
    'x-rejected-at-delivery': 4,
    'x-delivery-count': 9,
    'x-retry-count': 3,
    'x-death': death('delivery_limit', 1),
    'x-first-death-reason': 'delivery_limit',
    'x-first-death-queue': 'purchase',
    'x-first-death-exchange': '',
    'x-first-seen': '2026-11-22T10:00:00.000Z',
    'trace-id': 'abc',
  };

  it('drops the dead-letter bookkeeping, keeps the rest and marks the replay', () => {
    expect(replayHeaders(deadLetterHeaders, '2026-11-23T08:00:00.000Z')).toEqual({
      'x-first-seen': '2026-11-22T10:00:00.000Z',
      'trace-id': 'abc',
      'x-replayed-at': '2026-11-23T08:00:00.000Z',
      'x-replay-count': 1,
    });
  });

  it('counts replays across runs', () => {
    expect(replayHeaders({ 'x-replay-count': 2 }, 'now')['x-replay-count']).toBe(3);
  });
});

describe('replayProperties', () => {
  it('keeps the original properties, persistent, without the user-id the broker would check', () => {
    const properties = {
      contentType: 'application/json',
      messageId: 'm-1',
      correlationId: 'c-1',
      timestamp: 1_795_000_000,
      appId: 'flash-sale-api',
      userId: 'api-user',
      deliveryMode: 1,
      priority: undefined,
      headers: { 'x-rejection-reason': 'r', 'trace-id': 'abc' },
    } as unknown as MessageProperties;
    expect(replayProperties(properties, 'now')).toEqual({
      contentType: 'application/json',
      messageId: 'm-1',
      correlationId: 'c-1',
      timestamp: 1_795_000_000,
      appId: 'flash-sale-api',
      persistent: true,
      headers: { 'trace-id': 'abc', 'x-replayed-at': 'now', 'x-replay-count': 1 },
    });
  });
});

describe('bodyPreview and oneLine', () => {
  it('shows control characters escaped and cuts long bodies', () => {
    expect(bodyPreview(Buffer.from('{"a":\n"b\u0000"}'), 60)).toBe('{"a":\\n"b\\u0000"}');
    expect(bodyPreview(Buffer.from('x'.repeat(100)), 10)).toBe(`${'x'.repeat(10)}…`);
    expect(bodyPreview(Buffer.from([0x7b, 0xff, 0x7d]), 10)).toBe('{\ufffd}');
    expect(bodyPreview(Buffer.from('🛒🛒🛒'), 2)).toBe('🛒🛒…');
  });

  it('puts a reason spanning lines on one line', () => {
    expect(oneLine('database refused the order:\n\n  Raw query failed.', 100)).toBe(
      'database refused the order: Raw query failed.',
    );
    expect(oneLine('abcdef', 4)).toBe('abc…');
  });

  it('never prints an escape sequence, a bidi override or half a surrogate pair to the terminal', () => {
    expect(oneLine('id\u001b[2J\u202Egnp.exe', 100)).toBe('id\uFFFD[2J\uFFFDgnp.exe');
    expect(oneLine('🛒🛒🛒', 2)).toBe('🛒…');
    expect(bodyPreview(Buffer.from('{"u":"\u202Eevil\u001b"}'), 60)).toBe('{"u":"\\u202eevil\\u001b"}');
  });
});

describe('formatListing', () => {
  const listing: DeadLetterListing = {
    queue: 'purchase.dlq',
    messageCount: 3,
    inspected: 3,
    reasons: [
      { reason: 'saleId is required', code: 'INVALID_FIELDS', count: 2 },
      { reason: 'delivery_limit', code: 'broker', count: 1 },
    ],
    samples: [
      {
        firstSeen: '2026-11-22T10:00:00.000Z',
        deliveryCount: 1,
        messageId: 'm-1',
        reason: 'r',
        bytes: 2,
        preview: '{}',
      },
    ],
  };

  it('shows counts per reason and the samples as aligned columns', () => {
    expect(formatListing(listing)).toBe(
      [
        'purchase.dlq: 3 messages',
        '',
        'count  code            reason',
        '    2  INVALID_FIELDS  saleId is required',
        '    1  broker          delivery_limit',
        '',
        'first 1:',
        '',
        'first seen                deliveries  message id  bytes  body',
        '2026-11-22T10:00:00.000Z           1  m-1             2  {}',
        '',
      ].join('\n'),
    );
  });

  it('says when only part of the queue was counted, and when it is empty', () => {
    expect(formatListing({ ...listing, messageCount: 50 })).toContain(
      'purchase.dlq: 50 messages (counted the first 3;',
    );
    expect(formatListing({ ...listing, inspected: 0, messageCount: 0, reasons: [], samples: [] })).toBe(
      'purchase.dlq is empty\n',
    );
  });
});
