import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { workerLogDestination, workerLogOptions } from './observability.module.js';

/** A pino logger with the worker's options, writing its lines into an array. */
function capturedLogger(level: 'info' | 'debug' = 'info') {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: pino(workerLogOptions({ LOG_LEVEL: level, WORKER_ID: 'worker-7' }), sink), lines };
}

const PASSWORD = 's3cretpw';

describe("the worker's log options", () => {
  it('writes JSON lines with a textual level and the worker id', () => {
    const { logger, lines } = capturedLogger();
    logger.info({ saleId: 'sale-1' }, 'http listening');
    expect(lines).toEqual([
      expect.objectContaining({ level: 'info', worker: 'worker-7', saleId: 'sale-1', msg: 'http listening' }),
    ]);
  });

  it('stamps each line with an ISO 8601 time', () => {
    const { logger, lines } = capturedLogger();
    const before = Date.now();
    logger.info('consuming');
    const time = lines[0]?.time as string;
    expect(time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Date.parse(time)).toBeGreaterThanOrEqual(before - 1);
  });

  it('drops lines below the configured level', () => {
    const { logger, lines } = capturedLogger('info');
    logger.debug('order confirmed');
    expect(lines).toHaveLength(0);
  });

  it.each([
    [
      'a message',
      (logger: pino.Logger) => logger.warn(`cannot connect to amqp://guest:${PASSWORD}@127.0.0.1:1`),
    ],
    [
      'an interpolated argument',
      (logger: pino.Logger) => logger.warn('cannot connect to %s', `amqp://guest:${PASSWORD}@127.0.0.1:1`),
    ],
    [
      'a merged object',
      (logger: pino.Logger) =>
        logger.error(
          { target: { url: `postgresql://postgres:${PASSWORD}@db:5432/x` } },
          'database unreachable',
        ),
    ],
    [
      'an error with its cause',
      (logger: pino.Logger) =>
        logger.error(
          new Error(`no broker at amqp://guest:${PASSWORD}@h`, {
            cause: new Error(`postgresql://u:${PASSWORD}@db refused`),
          }),
        ),
    ],
    [
      'an error under err',
      (logger: pino.Logger) =>
        logger.error({ err: new TypeError(`bad url amqps://u:${PASSWORD}@h`) }, 'failed'),
    ],
  ])('redacts the password of a URL in %s', (_case, log) => {
    const { logger, lines } = capturedLogger();
    log(logger);
    const written = JSON.stringify(lines);
    expect(lines).toHaveLength(1);
    expect(written).not.toContain(PASSWORD);
    expect(written).toContain(':***@');
  });

  it('keeps the class, stack and cause of a logged error', () => {
    const { logger, lines } = capturedLogger();
    logger.error(new TypeError('outer', { cause: new RangeError('inner') }));
    const err = lines[0]?.err as { type: string; message: string; stack: string };
    expect(err.type).toBe('TypeError');
    expect(err.message).toBe('outer: inner');
    expect(err.stack).toContain('caused by: RangeError: inner');
  });
});

/** A stand-in for process.stdout, on a terminal or not, that keeps what is written to it. */
function fakeStdout(isTTY: boolean) {
  const written: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      written.push(chunk.toString('utf8'));
      done();
    },
  });
  return {
    stream: Object.assign(stream, { isTTY, hasColors: () => false }) as unknown as NodeJS.WriteStream,
    written,
  };
}

describe("the worker's log destination", () => {
  it("leaves JSON lines (pino's own stdout) when stdout is not a terminal", () => {
    expect(workerLogDestination(fakeStdout(false).stream)).toBeUndefined();
  });

  it('writes readable lines with the time, level, worker and message on a terminal', async () => {
    const stdout = fakeStdout(true);
    const destination = workerLogDestination(stdout.stream);
    expect(destination).toBeDefined();
    const logger = pino(workerLogOptions({ LOG_LEVEL: 'info', WORKER_ID: 'worker-7' }), destination);
    logger.warn({ saleId: 'sale-1' }, `broker away: amqp://guest:${PASSWORD}@h`);
    const deadline = Date.now() + 2000;
    while (!stdout.written.join('').includes('\n') && Date.now() < deadline) {
      await new Promise((tick) => setImmediate(tick));
    }
    const [line = '', ...details] = stdout.written.join('').split('\n');
    expect(line).toMatch(
      /^\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\] WARN: worker-7 broker away: amqp:\/\/guest:\*\*\*@h$/,
    );
    expect(details.join('\n')).toContain('saleId: "sale-1"');
    expect(stdout.written.join('')).not.toContain(PASSWORD);
  });
});
