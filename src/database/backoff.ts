/** Exponential back-off with full jitter: a random delay in [base, min(max, base·2^(attempt-1))]. */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(Math.min(baseMs, ceiling) + random() * Math.max(0, ceiling - baseMs));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
