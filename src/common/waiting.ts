import { sleep } from './backoff.js';

/**
 * True when `work` settles by `deadline` (epoch ms), false past it; rejects with what `work` rejects with
 * before then. `work` itself goes on: the caller decides what to do with it.
 */
export async function settledBy(work: Promise<unknown>, deadline: number): Promise<boolean> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      work.then(() => true),
      sleep(Math.max(0, deadline - Date.now()), timer.signal).then(() => false),
    ]);
  } finally {
    timer.abort();
  }
}

/** `work`'s result, or a rejection with `message` once `ms` have passed without one. */
export async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let result: { value: T } | undefined;
  const tracked = work.then((value) => (result = { value }));
  if (!(await settledBy(tracked, Date.now() + ms)) || !result) throw new Error(message);
  return result.value;
}

/** Callers waiting for one condition (drained, idle): each `wait()` resolves at the next `wakeAll()`. */
export class Waiters {
  private waiting: (() => void)[] = [];

  wait(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  wakeAll(): void {
    for (const wake of this.waiting.splice(0)) wake();
  }
}
