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
 *
 * `--efficiency-mode`: V8 then compiles a function with TurboFan, its slowest and most thorough compiler, only
 * once it has run 15 000 times; until then the code of Maglev, which compiles in a fraction of the time, serves. A worker's hot path is per message
 * (reading a purchase: tens of thousands of calls in a burst) or per batch (the INSERT through Prisma and
 * `pg`: a few hundred calls); without the flag TurboFan compiled both kinds on V8's background threads as
 * soon as they were warm, which was 17 % of one worker's CPU during a 60 000-message backlog (`perf`), and
 * compiled much of it again after each deoptimisation. Four alternating pairs on a 30 000-message backlog:
 * 20–21 against 21–23 µs per message (2.21–2.69× against 2.57–2.92× the bare consumer), and 172–175 against
 * 186–189 MB peak RSS (less optimised code, smaller compiler zones). On 100 000 messages the compiling is a
 * smaller share and the two are level (19–20 µs, 229–237 MB, two pairs).
 * `--no-single-threaded-gc-in-background`: efficiency mode would also collect garbage without V8's helper
 * threads (longer pauses); this keeps the collector as it is, so the mode changes the tiering alone.
 */
export const WORKER_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=16',
  '--min-semi-space-size=16',
  '--efficiency-mode',
  '--no-single-threaded-gc-in-background',
];
