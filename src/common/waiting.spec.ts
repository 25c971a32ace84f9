import { describe, expect, it } from '@jest/globals';
import { settledBy, Waiters, withTimeout } from './waiting.js';

const never = new Promise<never>(() => undefined);

describe('settledBy', () => {
  it('is true when the work settles before the deadline', async () => {
    expect(await settledBy(Promise.resolve('done'), Date.now() + 1000)).toBe(true);
  });

  it('is false at the deadline when the work has not settled', async () => {
    const started = Date.now();
    expect(await settledBy(never, started + 30)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });

  it("rejects with the work's own error", async () => {
    await expect(settledBy(Promise.reject(new Error('refused')), Date.now() + 1000)).rejects.toThrow(
      'refused',
    );
  });
});

describe('withTimeout', () => {
  it("gives the work's value", async () => {
    expect(await withTimeout(Promise.resolve(42), 1000, 'too slow')).toBe(42);
  });

  it('rejects with the message when the work takes too long', async () => {
    await expect(withTimeout(never, 10, 'no answer within 10 ms')).rejects.toThrow('no answer within 10 ms');
  });
});

describe('Waiters', () => {
  it('wakes every waiter once, and only those waiting at the time', async () => {
    const waiters = new Waiters();
    const woken: string[] = [];
    const first = waiters.wait().then(() => woken.push('first'));
    const second = waiters.wait().then(() => woken.push('second'));
    waiters.wakeAll();
    await Promise.all([first, second]);
    const late = waiters.wait().then(() => woken.push('late'));
    expect(await settledBy(late, Date.now() + 20)).toBe(false);
    expect(woken).toEqual(['first', 'second']);
  });
});
