/**
 * Node flags the worker runs with, wherever it is started: the image's CMD, `npm start`, the fleet runner,
 * and the worker processes of the tests and the benchmark (so they measure what is deployed).
 *
 * `--max-semi-space-size=16`: V8's young generation is sized for throughput by default and grows to about
 * 100 MB under a burst; most of a purchase's objects die within its batch, so 16 MB semi-spaces collect them
 * about as cheaply at a fraction of the memory. Measured on a 30 000-message backlog at default settings
 * (docs/benchmarks.md): V8's default, peak RSS about 300 MB; 8 MB, under 200 MB but the purchases still in
 * flight at each scavenge (a prefetch window) outlive two of them and are promoted, so the old generation
 * grows and is marked; 16 MB, half the scavenges and fewer promotions: less CPU per message at the same
 * peak RSS (seven alternating pairs: 21.9 against 23.4 µs, 2.74× against 3.05× the bare consumer; 182–189 MB
 * against 181–194 MB); 32 MB, no less CPU than 16 and about 20 MB more.
 *
 * `--min-semi-space-size=16`: V8 starts the semi-spaces at 1 MB and grows them one scavenge at a time, so a
 * burst on a fresh or quiet worker paid for many small scavenges first. Starting at 16 MB: seven alternating
 * pairs, 20.5 against 22.7 µs per message (2.47× against 2.69× the bare consumer), the same peak RSS (186–191
 * against 184–201 MB); the idle worker holds 3 MB more (150.6 → 153.5 MB).
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16', '--min-semi-space-size=16'];
