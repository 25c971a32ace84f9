/**
 * Node flags the worker runs with, wherever it is started: the image's CMD, `npm start`, the fleet runner,
 * and the worker processes of the tests and the benchmark (so they measure what is deployed).
 *
 * `--max-semi-space-size=8`: V8's young generation is sized for throughput by default and grows to about
 * 100 MB under a burst; most of a purchase's objects die within its batch, so 8 MB semi-spaces collect them
 * as cheaply. Measured on a 30 000-message backlog at default settings: peak RSS about 300 MB → under 200 MB,
 * CPU per message unchanged (docs/benchmarks.md).
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
