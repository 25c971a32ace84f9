import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The fields of `/proc/<pid>/stat` the bench reads: a process's identity and its own CPU time. */
export interface ProcStat {
  pid: number;
  /** The executable's name, at most 15 characters; may hold spaces and parentheses. */
  comm: string;
  ppid: number;
  /** CPU time in user mode, in clock ticks (`getconf CLK_TCK`). */
  utimeTicks: number;
  /** CPU time in kernel mode, in clock ticks. */
  stimeTicks: number;
}

/**
 * Parses one `/proc/<pid>/stat` line (proc(5)). The comm field is in parentheses and may itself hold spaces
 * and parentheses, so the fields are split after the last ')'. Undefined when the text is not such a line.
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf(' (');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  // After the comm: state (field 3), ppid (4), … utime (14), stime (15).
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const pid = Number(text.slice(0, open));
  const ppid = Number(fields[1]);
  const utimeTicks = Number(fields[11]);
  const stimeTicks = Number(fields[12]);
  if (![pid, ppid, utimeTicks, stimeTicks].every(Number.isSafeInteger)) return undefined;
  return { pid, comm: text.slice(open + 2, close), ppid, utimeTicks, stimeTicks };
}

/** The stat of a process, or undefined when it has exited or cannot be read. */
export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    // Gone or not readable: the caller shows the process as not measured.
    return undefined;
  }
}

/** The host's CPU time over all its CPUs, from the first line of `/proc/stat`, in clock ticks. */
export interface HostCpuTicks {
  /** Every CPU's time not idle: user, nice, system, irq, softirq and steal (guest time is within user). */
  busy: number;
  /** The same plus idle and iowait. */
  all: number;
}

/** Parses the `cpu` line that opens `/proc/stat` (proc(5)); undefined when the text does not start with one. */
export function parseHostCpu(text: string): HostCpuTicks | undefined {
  const line = text.split('\n', 1)[0] ?? '';
  if (!/^cpu\s/.test(line)) return undefined;
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (values.length < 4 || !values.every(Number.isSafeInteger)) return undefined;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = values;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, all: busy + idle + iowait };
}

/** The host's CPU time now, or undefined where `/proc/stat` cannot be read. */
export function readHostCpu(): HostCpuTicks | undefined {
  try {
    return parseHostCpu(readFileSync('/proc/stat', 'utf8'));
  } catch {
    // Not Linux, or /proc not mounted: the column shows the host as not measured.
    return undefined;
  }
}

let clockTicks: number | undefined;

/** Clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`); 100, Linux's value, if getconf fails. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      clockTicks = Number.isSafeInteger(value) && value > 0 ? value : 100;
    } catch {
      // No getconf (a minimal image): every Linux architecture Node runs on uses 100.
      clockTicks = 100;
    }
  }
  return clockTicks;
}
