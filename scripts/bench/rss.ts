import { readFile } from 'node:fs/promises';

/**
 * Peak resident memory of processes, by pid: polls VmHWM (the kernel's own high-water mark) from
 * /proc/<pid>/status, so a short spike between two polls is not missed.
 */
export class PeakRssSampler {
  private readonly peakKb = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: () => number[],
    intervalMs = 250,
  ) {
    this.timer = setInterval(() => void this.sample(), intervalMs);
    this.timer.unref();
  }

  async sample(): Promise<void> {
    await Promise.all(
      this.pids().map(async (pid) => {
        // A process that has just exited has no status any more: its last sampled peak stands.
        const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
        const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
        if (kb > (this.peakKb.get(pid) ?? 0)) this.peakKb.set(pid, kb);
      }),
    );
  }

  /** Takes a last sample (call it before the processes exit) and stops; peak RSS per process, in MB. */
  async finish(): Promise<number[]> {
    await this.sample();
    clearInterval(this.timer);
    return [...this.peakKb.values()].map((kb) => Math.round(kb / 1024));
  }
}
