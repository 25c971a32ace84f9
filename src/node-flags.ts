/**
 * The Node flags the worker runs with, declared here only: `npm start` and the image's CMD start it through
 * `start.ts`, which adds them; the fleet runner, the tests and the benchmark spawn `main.js` with them, so they
 * measure what is deployed. Each one earns its place in CPU per message or peak RSS: docs/benchmarks.md,
 * "The worker's Node flags".
 */
export const WORKER_NODE_FLAGS: readonly string[] = [
  // Most of a purchase's objects die within its batch: 16 MB semi-spaces collect them with fewer promotions.
  '--max-semi-space-size=16',
  // Sized for a burst from the first message, not grown one scavenge at a time.
  '--min-semi-space-size=16',
  // TurboFan only for code hot per message, Maglev's code for code hot per batch: less compiling, less RSS.
  '--efficiency-mode',
  // Keeps the collector's helper threads, which efficiency mode would give up too (longer pauses).
  '--no-single-threaded-gc-in-background',
];
