import { describe, expect, it } from '@jest/globals';
import {
  InvalidPurchaseError,
  InvalidReplyError,
  PublisherBackpressureError,
  PublisherClosedError,
  PublishNotConfirmedError,
  PurchasePublishError,
  PurchaseRejectedError,
  PurchaseReplyTimeoutError,
} from '@flashsale/publisher';
import { answerForError } from '../examples/flash-sale-api/src/purchases/publish-error.answer.js';
import {
  readPurchaseRequest,
  readWaitFlag,
} from '../examples/flash-sale-api/src/purchases/purchase-request.js';
import { InvalidApiSettingsError, parseApiSettings } from '../examples/flash-sale-api/src/settings.js';

/** The example API's pure parts: how each publisher error is answered, how a request and the settings are read. */
const QUEUE = 'purchase';
const MESSAGE_ID = 'c0ffee00-0000-4000-8000-000000000001';

describe('answerForError', () => {
  it.each([
    {
      case: 'back-pressure',
      error: new PublisherBackpressureError(QUEUE, 10, 10),
      status: 503,
      reason: 'backpressure',
    },
    {
      case: 'a closed publisher',
      error: new PublisherClosedError(QUEUE),
      status: 503,
      reason: 'shutting-down',
    },
    {
      case: 'a confirm not in time',
      error: new PublishNotConfirmedError(QUEUE, MESSAGE_ID, 'timeout'),
      status: 503,
      reason: 'timeout',
    },
    {
      case: 'a nack',
      error: new PublishNotConfirmedError(QUEUE, MESSAGE_ID, 'nacked'),
      status: 503,
      reason: 'nacked',
    },
    {
      case: 'an unroutable purchase',
      error: new PublishNotConfirmedError(QUEUE, MESSAGE_ID, 'unroutable'),
      status: 503,
      reason: 'unroutable',
    },
    {
      case: 'a channel that kept closing',
      error: new PublishNotConfirmedError(QUEUE, MESSAGE_ID, 'channel-closed'),
      status: 503,
      reason: 'channel-closed',
    },
    {
      case: "the worker's rejection",
      error: new PurchaseRejectedError(QUEUE, MESSAGE_ID, 'INVALID_FIELDS', 'userId must not be empty'),
      status: 422,
      reason: 'INVALID_FIELDS',
    },
    {
      case: 'no reply in time',
      error: new PurchaseReplyTimeoutError(QUEUE, MESSAGE_ID, 'corr-1', 300),
      status: 504,
      reason: 'reply-timeout',
    },
    {
      case: 'an unreadable reply',
      error: new InvalidReplyError(QUEUE, MESSAGE_ID, 'not JSON'),
      status: 502,
      reason: 'unreadable-reply',
    },
  ])('answers $case with $status, reason $reason', ({ error, status, reason }) => {
    const answer = answerForError(error);
    // Only a purchase that did not reach the queue may be sent again at once: Retry-After goes with 503 alone.
    expect({ status: answer?.status, retryAfter: answer?.retryAfter, reason: answer?.body.reason }).toEqual({
      status,
      retryAfter: status === 503,
      reason,
    });
    expect(answer?.body.statusCode).toBe(status);
  });

  it("answers an invalid purchase 400 with the contract's reasons", () => {
    const answer = answerForError(new InvalidPurchaseError(QUEUE, ['userId is required']));
    expect(answer).toMatchObject({
      status: 400,
      retryAfter: false,
      body: { reasons: ['userId is required'] },
    });
  });

  it('leaves an error that is no publisher outcome to Nest (a 500)', () => {
    expect(answerForError(new TypeError('bug'))).toBeUndefined();
    expect(answerForError(new PurchasePublishError('some other publish failure', QUEUE))).toBeUndefined();
  });

  it("gives the worker's rejection reason to the client", () => {
    const answer = answerForError(new PurchaseRejectedError(QUEUE, MESSAGE_ID, 'REFUSED_BY_DATABASE', 'no'));
    expect(answer?.body.message).toBe('the worker rejected the purchase: no');
  });
});

describe('readPurchaseRequest', () => {
  const now = new Date('2026-11-22T10:00:00.000Z');

  it('stamps the purchase with the time given and lower-cases the sale id, as the worker stores it', () => {
    expect(readPurchaseRequest('7F1D2C7E-5B8A-4C1E-9A55-3C2B7D9E0F11', { userId: 'user-42' }, now)).toEqual({
      ok: true,
      purchase: { saleId: '7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11', userId: 'user-42', timestamp: now },
    });
  });

  it('reads no userId from the prototype of the body', () => {
    const body = Object.create({ userId: 'inherited' }) as object;
    expect(readPurchaseRequest('7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11', body, now)).toEqual({
      ok: false,
      problems: ['userId is required'],
    });
  });

  it.each([null, 'user-42', 42, undefined])('refuses a body that is %p', (body) => {
    expect(readPurchaseRequest('7f1d2c7e-5b8a-4c1e-9a55-3c2b7d9e0f11', body, now)).toEqual({
      ok: false,
      problems: ['body must be a JSON object such as {"userId":"user-42"}'],
    });
  });
});

describe('readWaitFlag', () => {
  it.each([
    [undefined, false],
    ['false', false],
    ['true', true],
    ['', true],
    ['yes', undefined],
    [['true', 'true'], undefined],
  ])('reads %p as %p', (value, expected) => {
    expect(readWaitFlag(value)).toBe(expected);
  });
});

describe('parseApiSettings', () => {
  it('gives every setting its default', () => {
    expect(parseApiSettings({})).toEqual({
      RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:5672',
      PURCHASE_QUEUE: 'purchase',
      HTTP_PORT: 8080,
      MAX_BODY_BYTES: 16 * 1024,
      PUBLISH_TIMEOUT_MS: 5000,
      MAX_PENDING_PUBLISHES: 10_000,
      ORDER_WAIT_TIMEOUT_MS: 10_000,
      RETRY_AFTER_S: 1,
    });
  });

  it('refuses bad values, naming each setting and the rule, never echoing a URL', () => {
    let problems: string[] = [];
    try {
      parseApiSettings({
        RABBITMQ_URL: 'http://admin:secret@broker',
        HTTP_PORT: '70000',
        PURCHASE_QUEUE: 'a queue\u001b[31m',
      });
    } catch (error) {
      if (!(error instanceof InvalidApiSettingsError)) throw error;
      problems = error.problems;
    }
    expect(problems).toEqual([
      'RABBITMQ_URL (value hidden): must be amqp:// or amqps:// URLs, comma-separated',
      expect.stringMatching(/^PURCHASE_QUEUE="a queue\uFFFD\[31m": letters, digits/),
      expect.stringMatching(/^HTTP_PORT="70000": /),
    ]);
  });
});
