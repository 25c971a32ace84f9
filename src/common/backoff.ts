/** Exponential back-off with full jitter: a random delay in [base, min(max, base·2^(attempt-1))]. */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(Math.min(baseMs, ceiling) + random() * Math.max(0, ceiling - baseMs));
}

/**
 * Waits `ms`, or less when `signal` aborts (the worker's shutdown: see ShutdownSignal): resolves either way,
 * at once when it has aborted already. The caller looks at `signal.aborted` to tell which.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
