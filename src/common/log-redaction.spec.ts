import { describe, expect, it } from '@jest/globals';
import { redactCredentials, redactValue } from './log-redaction.js';

describe('redactCredentials', () => {
  it.each([
    ['amqp with user and password', 'amqp://guest:guest@127.0.0.1:5672', 'amqp://guest:***@127.0.0.1:5672'],
    [
      'amqps with a vhost',
      'amqps://worker:Pa55word@broker.example.com:5671/sales',
      'amqps://worker:***@broker.example.com:5671/sales',
    ],
    ['postgres', 'postgres://app:s3cret@db:5432/flashsale', 'postgres://app:***@db:5432/flashsale'],
    [
      'postgresql with a query',
      'postgresql://postgres:s3cretpw@127.0.0.1:5432/orders?sslmode=require',
      'postgresql://postgres:***@127.0.0.1:5432/orders?sslmode=require',
    ],
    [
      'http management API',
      'http://admin:hunter2@localhost:15672/api/queues',
      'http://admin:***@localhost:15672/api/queues',
    ],
    ['an upper-case scheme', 'AMQP://Guest:Secret@HOST', 'AMQP://Guest:***@HOST'],
    ['a password and no user', 'amqp://:onlysecret@host:5672', 'amqp://:***@host:5672'],
    ['a password holding a colon', 'amqp://user:pa:ss@host', 'amqp://user:***@host'],
    ['a password holding an unencoded @', 'amqp://guest:p@ss@host:5672', 'amqp://guest:***@host:5672'],
    ['a percent-encoded password', 'postgresql://app:p%40ss%2Fw@db/x', 'postgresql://app:***@db/x'],
    [
      'a user name holding @ (Azure PostgreSQL style)',
      'postgresql://admin@myserver:Azur3pw@myserver.postgres.database.azure.com:5432/db',
      'postgresql://admin@myserver:***@myserver.postgres.database.azure.com:5432/db',
    ],
    [
      'a URL inside a sentence',
      'cannot connect to amqp://guest:s3cretpw@127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1',
      'cannot connect to amqp://guest:***@127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1',
    ],
    [
      'a comma-separated list of cluster nodes',
      'amqp://w:pw1@c1:5672,amqp://w:pw2@c2:5672/sales, amqps://w:p@w3@c3',
      'amqp://w:***@c1:5672,amqp://w:***@c2:5672/sales, amqps://w:***@c3',
    ],
    [
      'two URLs in one line',
      'from amqp://a:pw1@h1 to postgresql://b:pw2@h2/db',
      'from amqp://a:***@h1 to postgresql://b:***@h2/db',
    ],
    [
      'URLs quoted in JSON text, one without credentials',
      '{"broker":"amqp://h1:5672","db":"postgres://u:pw@h2/db"}',
      '{"broker":"amqp://h1:5672","db":"postgres://u:***@h2/db"}',
    ],
  ])('hides the password of %s', (_case, text, expected) => {
    expect(redactCredentials(text)).toBe(expected);
  });

  it.each([
    ['a user without a password', 'postgresql://postgres@127.0.0.1:5432/flashsale'],
    ['a URL without credentials', 'amqp://127.0.0.1:5672'],
    ['a port and a path', 'http://localhost:3000/ready'],
    ['an @ in the path', 'https://registry.npmjs.org/@nestjs/core'],
    ['an @ in the query', 'http://host:8080/search?mail=a@b.example'],
    ['text with no URL', 'user:password@host is not a URL'],
  ])('leaves %s unchanged', (_case, text) => {
    expect(redactCredentials(text)).toBe(text);
  });
});

class BrokerUnreachableError extends Error {
  override readonly name = 'BrokerUnreachableError';
  constructor(
    message: string,
    readonly url: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

describe('redactValue', () => {
  const URL_WITH_PASSWORD = 'amqp://guest:s3cretpw@127.0.0.1:5672';
  const REDACTED = 'amqp://guest:***@127.0.0.1:5672';

  it.each([
    ['a string', URL_WITH_PASSWORD, REDACTED],
    ['a number', 42, 42],
    ['a boolean', false, false],
    ['null', null, null],
    ['undefined', undefined, undefined],
    [
      'a nested object',
      { msg: 'connect', target: { urls: [URL_WITH_PASSWORD, 'plain'] }, attempt: 2 },
      { msg: 'connect', target: { urls: [REDACTED, 'plain'] }, attempt: 2 },
    ],
    ['an array of objects', [{ url: URL_WITH_PASSWORD }], [{ url: REDACTED }]],
    ['a URL object', new URL('postgresql://app:s3cretpw@db:5432/x'), 'postgresql://app:***@db:5432/x'],
  ])('handles %s', (_case, value, expected) => {
    expect(redactValue(value)).toEqual(expected);
  });

  it('leaves the value it was given untouched', () => {
    const original = { target: { url: URL_WITH_PASSWORD } };
    redactValue(original);
    expect(original.target.url).toBe(URL_WITH_PASSWORD);
  });

  it('keeps a date as the same instant', () => {
    const at = new Date('2026-11-22T10:00:00.000Z');
    expect(JSON.stringify(redactValue({ at }))).toBe('{"at":"2026-11-22T10:00:00.000Z"}');
  });

  it('redacts strings at any depth, and cuts off only what is too deep to log', () => {
    let nested: Record<string, unknown> = { url: URL_WITH_PASSWORD };
    for (let level = 0; level < 12; level++) nested = { level, nested, url: URL_WITH_PASSWORD };
    const logged = JSON.stringify(redactValue(nested));
    expect(logged).not.toContain('s3cretpw');
    expect(logged).toContain(REDACTED);
  });

  it('survives a circular reference without leaking', () => {
    const circular: Record<string, unknown> = { url: URL_WITH_PASSWORD };
    circular.self = circular;
    const logged = JSON.stringify(redactValue(circular));
    expect(logged).not.toContain('s3cretpw');
    expect(logged).toContain(REDACTED);
  });

  describe('of an Error', () => {
    const cause = new Error(`connect ECONNREFUSED via ${URL_WITH_PASSWORD}`);
    const error = new BrokerUnreachableError(`cannot reach ${URL_WITH_PASSWORD}`, URL_WITH_PASSWORD, {
      cause,
    });
    const redacted = redactValue(error) as BrokerUnreachableError;

    it('redacts its message and stack', () => {
      expect(redacted.message).toBe(`cannot reach ${REDACTED}`);
      expect(redacted.stack).toContain(`cannot reach ${REDACTED}`);
      expect(redacted.stack).not.toContain('s3cretpw');
    });

    it('keeps its class and name, so the log line says which error it was', () => {
      expect(redacted).toBeInstanceOf(BrokerUnreachableError);
      expect(redacted.constructor.name).toBe('BrokerUnreachableError');
      expect(redacted.name).toBe('BrokerUnreachableError');
    });

    it('redacts its context fields', () => {
      expect(redacted.url).toBe(REDACTED);
    });

    it('keeps its cause, redacted', () => {
      expect(redacted.cause).toBeInstanceOf(Error);
      expect((redacted.cause as Error).message).toBe(`connect ECONNREFUSED via ${REDACTED}`);
    });

    it('keeps the errors of an AggregateError, redacted', () => {
      const aggregate = redactValue(new AggregateError([cause], 'every address failed')) as AggregateError;
      expect(aggregate).toBeInstanceOf(AggregateError);
      expect((aggregate.errors[0] as Error).message).toBe(`connect ECONNREFUSED via ${REDACTED}`);
    });

    it('leaves the original error untouched', () => {
      expect(error.message).toBe(`cannot reach ${URL_WITH_PASSWORD}`);
      expect(error.url).toBe(URL_WITH_PASSWORD);
    });
  });
});
