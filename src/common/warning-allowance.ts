/**
 * How many warn lines about single messages may still be written in this interval (MESSAGE_WARNINGS_PER_10S):
 * a flood of bad messages must not become a flood of synchronous log writes. Whoever owns the interval
 * restarts it and says how many lines were left out.
 */
export class WarningAllowance {
  private used = 0;
  private leftOut = 0;

  /** `perInterval` 0: no limit. */
  constructor(private readonly perInterval: number) {}

  /** Whether one more warn line fits this interval; one that does not is counted as left out. */
  take(): boolean {
    if (this.perInterval === 0 || this.used < this.perInterval) {
      this.used++;
      return true;
    }
    this.leftOut++;
    return false;
  }

  /** Starts a new interval; returns how many lines the one that ended left out. */
  restart(): number {
    const leftOut = this.leftOut;
    this.used = 0;
    this.leftOut = 0;
    return leftOut;
  }
}
