import { readHostCpu, readProcStat } from './proc-stat.js';

/** One reading of a process's CPU time: utime + stime in clock ticks, at an epoch millisecond. */
export interface CpuReading {
  atMs: number;
  ticks: number;
}

/**
 * CPU ticks of a process at `atMs`, interpolated linearly between the readings around it. Before the first
 * reading it is the first, after the last the last (a process that exited keeps what it had used).
 */
export function ticksAt(readings: readonly CpuReading[], atMs: number): number {
  const first = readings[0];
  const last = readings.at(-1);
  if (!first || !last) return 0;
  if (atMs <= first.atMs) return first.ticks;
  if (atMs >= last.atMs) return last.ticks;
  const after = readings.findIndex((reading) => reading.atMs >= atMs);
  const right = readings[after]!;
  const left = readings[after - 1]!;
  if (right.atMs === left.atMs) return right.ticks;
  return left.ticks + ((right.ticks - left.ticks) * (atMs - left.atMs)) / (right.atMs - left.atMs);
}

/** What one poll reads: CPU ticks by key (a process id, or a kind of the host's CPU time), in a stable order. */
export type TickReader = () => Iterable<readonly [key: number | string, ticks: number]>;

/** The CPU time (utime + stime from /proc/<pid>/stat) of each process of a changing set, by pid. */
export function processTicks(pids: () => readonly number[]): TickReader {
  return function* () {
    for (const pid of pids()) {
      const stat = readProcStat(pid);
      // A process that cannot be read (exited, not permitted) is skipped.
      if (stat) yield [pid, stat.utimeTicks + stat.stimeTicks] as const;
    }
  };
}

/** The host's busy and whole CPU time (/proc/stat), keyed `busy` and `all`. */
export function* hostTicks(): Generator<readonly [string, number]> {
  const host = readHostCpu();
  if (!host) return;
  yield ['busy', host.busy];
  yield ['all', host.all];
}

/**
 * Polls CPU times (of a changing set of processes, or of the host), so that the CPU used between two moments
 * known only afterwards (first and last message settled) can be read back.
 */
export class CpuSampler {
  private readonly readings = new Map<number | string, CpuReading[]>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly read: TickReader,
    intervalMs: number,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  /** Reads every key once. */
  sample(): void {
    const atMs = Date.now();
    for (const [key, ticks] of this.read()) {
      const readings = this.readings.get(key) ?? [];
      readings.push({ atMs, ticks });
      this.readings.set(key, readings);
    }
  }

  /** Takes a last reading (call it while the processes still run) and stops polling. */
  finish(): void {
    this.sample();
    clearInterval(this.timer);
  }

  /** Whether anything could be read at all. */
  get measured(): boolean {
    return this.readings.size > 0;
  }

  /** CPU ticks of each key between `fromMs` and `toMs`, in the order the keys were first seen. */
  ticksBetween(fromMs: number, toMs: number): number[] {
    return [...this.readings.values()].map((readings) =>
      Math.max(0, ticksAt(readings, toMs) - ticksAt(readings, fromMs)),
    );
  }
}
