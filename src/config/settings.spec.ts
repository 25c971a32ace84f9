import { describe, expect, it } from '@jest/globals';
import { InvalidSettingsError, parseSettings } from './settings.js';

/** The error `parseSettings` throws for `env`, or undefined when it takes it. */
function settingsError(env: NodeJS.ProcessEnv): Error | undefined {
  try {
    parseSettings(env);
  } catch (error) {
    return error as Error;
  }
  return undefined;
}

describe('parseSettings', () => {
  it('applies the contract defaults', () => {
    const settings = parseSettings({});
    expect(settings).toMatchObject({
      RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:5672',
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/flashsale',
      PURCHASE_QUEUE: 'purchase',
      DEAD_LETTER_QUEUE: 'purchase.dlq',
      QUEUE_TYPE: 'quorum',
      SHUTDOWN_DEADLINE_MS: 25_000,
    });
    expect(settings.SHUTDOWN_DEADLINE_MS).toBeLessThan(30_000);
  });

  it('derives the dead-letter queue from the purchase queue unless it is named', () => {
    expect(parseSettings({ PURCHASE_QUEUE: 'purchase_queue' }).DEAD_LETTER_QUEUE).toBe('purchase_queue.dlq');
    expect(
      parseSettings({
        PURCHASE_QUEUE: 'purchase_queue',
        DEAD_LETTER_QUEUE: 'purchase_dlq',
        QUEUE_TYPE: 'classic',
      }),
    ).toMatchObject({ DEAD_LETTER_QUEUE: 'purchase_dlq', QUEUE_TYPE: 'classic' });
  });

  it('caps the warn lines about single messages at 100 per 10 s unless told, 0 meaning no cap', () => {
    expect(parseSettings({}).MESSAGE_WARNINGS_PER_10S).toBe(100);
    expect(parseSettings({ MESSAGE_WARNINGS_PER_10S: '0' }).MESSAGE_WARNINGS_PER_10S).toBe(0);
    const withNul = settingsError({ MESSAGE_WARNINGS_PER_10S: '10\u0000' });
    expect(withNul).toBeInstanceOf(InvalidSettingsError);
    expect(withNul?.message).toContain('MESSAGE_WARNINGS_PER_10S=');
    expect(withNul?.message.includes('\u0000')).toBe(false);
  });

  it('reads numbers from strings and treats empty values as unset', () => {
    expect(parseSettings({ PREFETCH: '300', BATCH_SIZE: '' })).toMatchObject({
      PREFETCH: 300,
      BATCH_SIZE: 250,
    });
  });

  it.each([
    ['PREFETCH', 'lots', 'PREFETCH="lots"'],
    ['PREFETCH', '0', 'PREFETCH="0"'],
    ['QUEUE_TYPE', 'stream', 'QUEUE_TYPE="stream"'],
    ['RABBITMQ_URL', 'http://localhost', 'must start with amqp://'],
    ['DATABASE_URL', 'mysql://x@y/z', 'must start with postgresql://'],
    ['HTTP_PORT', '70000', 'HTTP_PORT="70000"'],
    ['PURCHASE_QUEUE', 'a queue', 'letters, digits'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL="loud"'],
    ['MESSAGE_WARNINGS_PER_10S', '-1', 'MESSAGE_WARNINGS_PER_10S="-1"'],
    ['MESSAGE_WARNINGS_PER_10S', '1e9', 'MESSAGE_WARNINGS_PER_10S="1e9"'],
  ])('refuses %s=%s naming the setting and the rule', (name, value, expected) => {
    const thrown = settingsError({ [name]: value });
    expect(thrown).toBeInstanceOf(InvalidSettingsError);
    expect((thrown as Error).message).toContain(name);
    expect((thrown as Error).message).toContain(expected);
  });

  it('never echoes the value of a URL setting, which may hold a password', () => {
    expect(() => parseSettings({ RABBITMQ_URL: 'amqp//guest:s3cretpw@127.0.0.1' })).toThrow(
      /^(?![\s\S]*s3cretpw)[\s\S]*RABBITMQ_URL \(value hidden\)/,
    );
  });

  it('accepts the nodes of a cluster as a comma-separated RABBITMQ_URL, and hides them when one is bad', () => {
    const nodes = 'amqp://w:pw@c1:5672,amqp://w:pw@c2:5672,amqp://w:pw@c3:5672';
    expect(parseSettings({ RABBITMQ_URL: nodes }).RABBITMQ_URL).toBe(nodes);
    expect(() => parseSettings({ RABBITMQ_URL: 'amqp://w:s3cretpw@c1,http://w:s3cretpw@c2' })).toThrow(
      /^(?![\s\S]*s3cretpw)[\s\S]*RABBITMQ_URL \(value hidden\): node 2 of 2: must start with amqp:\/\//,
    );
  });

  it('reports every bad setting at once', () => {
    expect(() => parseSettings({ PREFETCH: '-1', BATCH_SIZE: 'x' })).toThrow(
      /PREFETCH[\s\S]*BATCH_SIZE|BATCH_SIZE[\s\S]*PREFETCH/,
    );
  });

  describe('rules between settings, on the values in force', () => {
    it.each<[string, NodeJS.ProcessEnv, RegExp]>([
      [
        'a client-side query timeout not above the statement timeout (the default one)',
        { DB_STATEMENT_TIMEOUT_MS: '30000' },
        /^DB_QUERY_TIMEOUT_MS: 20000 must be above DB_STATEMENT_TIMEOUT_MS \(30000\)/m,
      ],
      [
        'a query timeout equal to the statement timeout',
        { DB_STATEMENT_TIMEOUT_MS: '5000', DB_QUERY_TIMEOUT_MS: '5000' },
        /^DB_QUERY_TIMEOUT_MS="5000": 5000 must be above DB_STATEMENT_TIMEOUT_MS \(5000\)/m,
      ],
      [
        'a first back-off above the longest',
        { RETRY_BASE_MS: '5000', RETRY_MAX_MS: '1000' },
        /^RETRY_BASE_MS="5000": 5000 must not be above RETRY_MAX_MS \(1000\)/m,
      ],
      [
        'an audit batch larger than the audit buffer',
        { AUDIT_BATCH_SIZE: '5000', AUDIT_BUFFER_MAX: '1000' },
        /^AUDIT_BATCH_SIZE="5000": 5000 must not be above AUDIT_BUFFER_MAX \(1000\)/m,
      ],
    ])('refuses %s, naming both', (_name, env, message) => {
      const error = settingsError(env);
      expect(error).toBeInstanceOf(InvalidSettingsError);
      expect(error?.message.split('\n').map((line) => line.trim())).toContainEqual(
        expect.stringMatching(message),
      );
    });

    it('takes values that keep them', () => {
      expect(
        settingsError({
          DB_STATEMENT_TIMEOUT_MS: '5000',
          DB_QUERY_TIMEOUT_MS: '5001',
          RETRY_BASE_MS: '30000',
        }),
      ).toBeUndefined();
    });
  });

  it('reads DB_PREPARED_STATEMENTS as a yes or no, on by default, and refuses anything else', () => {
    expect(parseSettings({}).DB_PREPARED_STATEMENTS).toBe(true);
    expect(parseSettings({ DB_PREPARED_STATEMENTS: 'false' }).DB_PREPARED_STATEMENTS).toBe(false);
    expect(() => parseSettings({ DB_PREPARED_STATEMENTS: 'sometimes' })).toThrow(/DB_PREPARED_STATEMENTS/);
  });

  it('quotes a bad value without its control or bidi characters, and cut short', () => {
    const hostile = `\u001b[2J\u202e${'9'.repeat(100_000)}`;
    const failure = settingsError({ PREFETCH: hostile });
    expect(failure?.message).toContain('PREFETCH=');
    expect(['\u001b', '\u202e'].some((raw) => (failure?.message ?? '\u001b').includes(raw))).toBe(false);
    expect(failure?.message.length).toBeLessThan(500);
  });
});
