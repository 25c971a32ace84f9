import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import {
  busyPercent,
  type CpuPerMessage,
  microsecondsPerMessage,
  ScenarioCpu,
} from '../scripts/bench/cpu-per-message.js';
import { ticksAt } from '../scripts/bench/cpu-sampler.js';
import { parseHostCpu, parseProcStat } from '../scripts/bench/proc-stat.js';
import {
  formatConsumerCpu,
  formatMicroseconds,
  formatPercent,
  formatTable,
  ratios,
  summaryJson,
} from '../scripts/bench/report.js';
import type { ScenarioName, ScenarioResult } from '../scripts/bench/scenario.js';

/** A /proc/<pid>/stat line with this comm, ppid 1, utime 1234 and stime 56 ticks (fields 14 and 15). */
const statLine = (comm: string) =>
  `4242 (${comm}) S 1 4242 4242 0 -1 4194560 1500 0 0 0 1234 56 0 0 20 0 11 0 3021 1180000000 30000 ` +
  '18446744073709551615 1 1 0 0 0 0 0 16781312 17408 0 0 0 17 1 0 0 0 0 0\n';

describe('parseProcStat', () => {
  it('reads pid, comm, ppid and the user and system ticks', () => {
    expect(parseProcStat(statLine('postgres'))).toEqual({
      pid: 4242,
      comm: 'postgres',
      ppid: 1,
      utimeTicks: 1234,
      stimeTicks: 56,
    });
  });

  it.each(['beam.smp', 'my worker', 'a) S 9 (b', 'x (1) y', ')', '(('])(
    'splits the fields after the last ")" when the comm is %p',
    (comm) => {
      const stat = parseProcStat(statLine(comm));
      expect(stat).toMatchObject({ comm, ppid: 1, utimeTicks: 1234, stimeTicks: 56 });
    },
  );

  it('refuses text that is not a stat line', () => {
    expect(parseProcStat('')).toBeUndefined();
    expect(parseProcStat('4242 (node) S 1')).toBeUndefined();
    expect(parseProcStat('no parentheses at all')).toBeUndefined();
  });
});

describe('parseHostCpu', () => {
  it('adds every CPU time but idle and iowait to the busy time', () => {
    // user nice system idle iowait irq softirq steal guest guest_nice
    const stat = 'cpu  1000 20 300 5000 80 7 9 4 600 0\ncpu0 500 10 150 2500 40 3 4 2 300 0\nintr 1 2 3\n';
    expect(parseHostCpu(stat)).toEqual({ busy: 1340, all: 6420 });
  });

  it('reads the four fields of an old kernel', () => {
    expect(parseHostCpu('cpu 10 0 30 60\n')).toEqual({ busy: 40, all: 100 });
  });

  it('refuses text that does not open with the cpu line', () => {
    expect(parseHostCpu('')).toBeUndefined();
    expect(parseHostCpu('cpu0 1 2 3 4\n')).toBeUndefined();
    expect(parseHostCpu('intr 1 2 3\ncpu 1 2 3 4\n')).toBeUndefined();
    expect(parseHostCpu('cpu 1 2 x 4\n')).toBeUndefined();
    expect(parseHostCpu('cpu 1 2\n')).toBeUndefined();
  });
});

describe('busyPercent', () => {
  it('is the busy ticks over all ticks, in percent', () => {
    expect(busyPercent([95, 100])).toBe(95);
    expect(busyPercent([0, 40])).toBe(0);
  });

  it('is null without readings or without time', () => {
    expect(busyPercent([])).toBeNull();
    expect(busyPercent([0, 0])).toBeNull();
  });
});

describe('ticksAt', () => {
  const readings = [
    { atMs: 1000, ticks: 10 },
    { atMs: 1100, ticks: 20 },
    { atMs: 1300, ticks: 60 },
  ];

  it('interpolates between the readings around the moment', () => {
    expect(ticksAt(readings, 1050)).toBe(15);
    expect(ticksAt(readings, 1200)).toBe(40);
    expect(ticksAt(readings, 1100)).toBe(20);
  });

  it('holds the first reading before it and the last after it', () => {
    expect(ticksAt(readings, 500)).toBe(10);
    expect(ticksAt(readings, 9000)).toBe(60);
    expect(ticksAt([], 1000)).toBe(0);
  });
});

describe('microsecondsPerMessage', () => {
  it('turns clock ticks over messages into microseconds per message', () => {
    // 150 ticks at 100 Hz are 1.5 s of CPU; over 20 000 messages 75 µs each.
    expect(microsecondsPerMessage(150, 20_000, 100)).toBe(75);
    expect(microsecondsPerMessage(150, 20_000, 1000)).toBe(7.5);
  });

  it('is 0 without messages rather than infinite', () => {
    expect(microsecondsPerMessage(150, 0, 100)).toBe(0);
  });
});

describe('ScenarioCpu', () => {
  it('reads the CPU this process spends between two moments', () => {
    const cpu = new ScenarioCpu(() => [process.pid], { rabbitmq: null });
    const fromMs = Date.now();
    let spin = 0;
    while (Date.now() - fromMs < 300) spin += Math.sqrt(spin + 1);
    cpu.finish();
    const perMessage = cpu.perMessage({ fromMs, toMs: Date.now() }, 1000, 100);
    // About 300 ms of CPU over 1000 messages: 300 µs each; ticks are 10 ms and the host is shared.
    expect(perMessage?.consumerUs).toBeGreaterThan(100);
    expect(perMessage?.consumerUs).toBeLessThan(600);
    expect(perMessage).toMatchObject({ rabbitmqUs: null, postgresUs: undefined });
    // The bench's own process is this one here: the same spin.
    expect(perMessage?.benchUs).toBeGreaterThan(100);
    expect(perMessage?.benchUs).toBeLessThan(600);
    // One of the host's CPUs (as many as /proc/stat counts, whatever this process may run on) spun through the
    // whole window.
    const cpus = readFileSync('/proc/stat', 'utf8').match(/^cpu\d+ /gm)?.length ?? 1;
    expect(perMessage?.hostBusyPercent).toBeGreaterThan(50 / cpus);
    expect(perMessage?.hostBusyPercent).toBeLessThanOrEqual(100);
    expect(spin).toBeGreaterThan(0);
  });

  it('measures nothing for an empty window', () => {
    const cpu = new ScenarioCpu(() => [process.pid], { rabbitmq: null });
    cpu.finish();
    expect(cpu.perMessage({ fromMs: 0, toMs: 0 }, 1000)).toBeUndefined();
  });
});

describe('the CPU columns', () => {
  const cpu = (consumerUs: number, perProcessUs = [consumerUs]): CpuPerMessage => ({
    windowMs: 2000,
    consumerUs,
    perProcessUs,
    postgresUs: 31.96,
    rabbitmqUs: null,
    benchUs: 19.64,
    hostBusyPercent: 95.5,
  });
  const result = (scenario: ScenarioName, cpuPerMessage?: CpuPerMessage): ScenarioResult => ({
    scenario,
    mode: 'backlog',
    messages: 20_000,
    orders: 17_819,
    msgsPerSecond: 10_000,
    ordersPerSecond: 8_900,
    peakRssMb: [300],
    cpu: cpuPerMessage,
    complete: true,
  });

  it('shows one decimal below 10 µs, whole microseconds above, - when unreadable, — when not applicable', () => {
    expect(formatMicroseconds(7.25)).toBe('7.3');
    expect(formatMicroseconds(1234.4)).toBe('1,234');
    expect(formatMicroseconds(null)).toBe('-');
    expect(formatMicroseconds(undefined)).toBe('—');
  });

  it("shows the host's busy share in whole percent, - when unreadable", () => {
    expect(formatPercent(95.5)).toBe('96');
    expect(formatPercent(0)).toBe('0');
    expect(formatPercent(null)).toBe('-');
  });

  it("shows a fleet's sum with each worker's share after it", () => {
    expect(formatConsumerCpu(cpu(62.2, [20.9, 20.1, 21.2]))).toBe('62 (21/20/21)');
    expect(formatConsumerCpu(cpu(80))).toBe('80');
    expect(formatConsumerCpu(undefined)).toBe('-');
  });

  it("shows each CPU column under its own heading, the bench's own process last before the host", () => {
    const [heading, , fleet] = formatTable('steady', [result('fleet', cpu(90, [30, 30, 30]))], 'test')
      .split('\n')
      .slice(2)
      .map((line) => line.trim().split(/\s{2,}/));
    expect(heading?.slice(-5)).toEqual([
      'x ceiling',
      'PG µs/msg',
      'MQ µs/msg',
      'bench µs/msg',
      'host busy %',
    ]);
    expect(fleet?.slice(-5)).toEqual(['—', '32', '-', '20', '96']);
  });

  it("gives every scenario's consumer CPU per message over the ceiling's", () => {
    const results = [
      result('ceiling', cpu(24)),
      result('worker', cpu(80)),
      result('fleet', cpu(90, [30, 30, 30])),
    ];
    expect(ratios(results).cpuPerMessageToCeiling).toEqual({ ceiling: 1, worker: 3.33, fleet: 3.75 });
    expect(ratios([result('worker', cpu(80))]).cpuPerMessageToCeiling).toEqual({});
  });

  it('puts the CPU per message into the JSON line, null where it could not be read', () => {
    const summary = JSON.parse(
      summaryJson({ count: 20_000 }, { backlog: [result('worker', cpu(79.94))] }),
    ) as {
      modes: { backlog: { results: { worker: { cpuUsPerMessage: unknown } } } };
    };
    expect(summary.modes.backlog.results.worker.cpuUsPerMessage).toEqual({
      consumers: 79.9,
      perProcess: [79.9],
      postgres: 32,
      rabbitmq: null,
      bench: 19.6,
      hostBusyPercent: 96,
      windowMs: 2000,
    });
  });
});
