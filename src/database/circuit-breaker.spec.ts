import { describe, expect, it, jest } from '@jest/globals';
import { holdsWithin } from '../../test/support/holds-within.js';
import { CircuitBreaker } from './circuit-breaker.js';

describe('CircuitBreaker', () => {
  const options = { failureThreshold: 2, retryBaseMs: 1, retryMaxMs: 2 };

  it('opens after the threshold of consecutive failures, probes, and closes on the first good probe', async () => {
    let healthy = false;
    let probes = 0;
    const breaker = new CircuitBreaker(() => {
      probes++;
      return healthy ? Promise.resolve() : Promise.reject(new Error('database away'));
    }, options);
    const events: string[] = [];
    breaker.on('open', () => events.push('open'));
    breaker.on('close', () => events.push('close'));

    breaker.recordFailure(new Error('first'));
    expect(breaker.isOpen).toBe(false);
    breaker.recordFailure(new Error('second'));
    expect(breaker.isOpen).toBe(true);
    expect(await holdsWithin(() => probes >= 2)).toBe(true);

    healthy = true;
    await breaker.whenClosed();
    expect(breaker.isOpen).toBe(false);
    expect(events).toEqual(['open', 'close']);
  });

  it('counts only consecutive failures: a success in between starts again', () => {
    const breaker = new CircuitBreaker(() => Promise.resolve(), options);
    breaker.recordFailure(new Error('one'));
    breaker.recordSuccess();
    breaker.recordFailure(new Error('two'));
    expect(breaker.isOpen).toBe(false);
  });

  it('stops probing at shutdown and lets nothing wait on it any more', async () => {
    jest.useFakeTimers();
    try {
      const shutdown = new AbortController();
      let probes = 0;
      const breaker = new CircuitBreaker(
        () => {
          probes++;
          return Promise.reject(new Error('database away'));
        },
        { ...options, signal: shutdown.signal },
      );
      breaker.recordFailure(new Error('one'));
      breaker.recordFailure(new Error('two'));
      await jest.advanceTimersToNextTimerAsync(); // the first back-off, then its probe
      expect(probes).toBe(1);

      shutdown.abort();
      await breaker.whenClosed(); // resolves: a batch waiting for the circuit can give up
      // However long it is left, no back-off is pending and no probe follows.
      expect(jest.getTimerCount()).toBe(0);
      await jest.advanceTimersByTimeAsync(60_000);
      expect(probes).toBe(1);
    } finally {
      jest.useRealTimers();
    }
  });
});
