import { describe, expect, it } from '@jest/globals';
import { backoffDelayMs, sleep } from './backoff.js';

describe('backoffDelayMs', () => {
  it('grows exponentially from the base and never passes the maximum', () => {
    const upper = (attempt: number) => backoffDelayMs(attempt, 100, 5000, () => 1);
    expect([1, 2, 3, 4, 5, 6, 7, 30].map(upper)).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  it('spreads retries between the base and the ceiling (jitter)', () => {
    expect(backoffDelayMs(4, 100, 5000, () => 0)).toBe(100);
    expect(backoffDelayMs(4, 100, 5000, () => 0.5)).toBe(450);
  });
});

describe('sleep', () => {
  it('ends early, and at once afterwards, when its signal aborts', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const waiting = sleep(10_000, controller.signal);
    controller.abort();
    await waiting;
    await sleep(10_000, controller.signal);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
