import { readProcStat } from './proc-stat.js';

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

/**
 * Polls the CPU time (utime + stime from /proc/<pid>/stat) of a changing set of processes, so that the CPU
 * each used between two moments known only afterwards (first and last message settled) can be read back.
 */
export class CpuSampler {
  private readonly readings = new Map<number, CpuReading[]>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: () => readonly number[],
    intervalMs: number,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  /** Reads every process once; a process that cannot be read (exited, not permitted) is skipped. */
  sample(): void {
    const atMs = Date.now();
    for (const pid of this.pids()) {
      const stat = readProcStat(pid);
      if (!stat) continue;
      const readings = this.readings.get(pid) ?? [];
      readings.push({ atMs, ticks: stat.utimeTicks + stat.stimeTicks });
      this.readings.set(pid, readings);
    }
  }

  /** Takes a last reading (call it while the processes still run) and stops polling. */
  finish(): void {
    this.sample();
    clearInterval(this.timer);
  }

  /** Whether any process could be read at all. */
  get measured(): boolean {
    return this.readings.size > 0;
  }

  /** CPU ticks each process used between `fromMs` and `toMs`, in the order the processes were first seen. */
  ticksBetween(fromMs: number, toMs: number): number[] {
    return [...this.readings.values()].map((readings) =>
      Math.max(0, ticksAt(readings, toMs) - ticksAt(readings, fromMs)),
    );
  }
}
