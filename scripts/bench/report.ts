import type { CpuPerMessage } from './cpu-per-message.js';
import { SCENARIOS, type BenchMode, type ScenarioName, type ScenarioResult } from './scenario.js';

const number = new Intl.NumberFormat('en-US');
const whole = (value: number | undefined) => (value === undefined ? '—' : number.format(Math.round(value)));

/**
 * The fleet over a reference: msgs/s over msgs/s, and p99 latency over p99 latency; and every scenario's
 * consumer CPU per message over the ceiling's.
 */
export interface Ratios {
  throughput: { fleetToCeiling?: number; fleetToPerMessage?: number };
  p99Latency: { fleetToCeiling?: number; fleetToPerMessage?: number };
  cpuPerMessageToCeiling: Partial<Record<ScenarioName, number>>;
}

/**
 * Microseconds of CPU per message as the table shows them: one decimal below 10, whole above; `-` when the
 * processes could not be read, `—` when there are none (no database for the ceiling).
 */
export function formatMicroseconds(value: number | null | undefined): string {
  if (value === null) return '-';
  if (value === undefined) return '—';
  return value < 10 ? value.toFixed(1) : number.format(Math.round(value));
}

/** A share in whole percent; `-` when it could not be read. */
export function formatPercent(value: number | null): string {
  return value === null ? '-' : String(Math.round(value));
}

/** The consumers' CPU per message; for several processes each one's share after the sum: `62 (21/20/21)`. */
export function formatConsumerCpu(cpu: CpuPerMessage | undefined): string {
  if (!cpu) return '-';
  const total = formatMicroseconds(cpu.consumerUs);
  return cpu.perProcessUs.length > 1
    ? `${total} (${cpu.perProcessUs.map(formatMicroseconds).join('/')})`
    : total;
}

function find(results: ScenarioResult[], scenario: ScenarioName): ScenarioResult | undefined {
  return results.find((result) => result.scenario === scenario && result.complete);
}

function ratio(fleet: number | undefined, other: number | undefined): number | undefined {
  return fleet !== undefined && other ? Number((fleet / other).toFixed(2)) : undefined;
}

export function ratios(results: ScenarioResult[]): Ratios {
  const fleet = find(results, 'fleet');
  const ceiling = find(results, 'ceiling');
  const perMessage = find(results, 'per-message');
  const cpuToCeiling = Object.fromEntries(
    results.flatMap((result) => {
      const value = ratio(result.cpu?.consumerUs, ceiling?.cpu?.consumerUs);
      return result.complete && value !== undefined ? [[result.scenario, value]] : [];
    }),
  );
  return {
    cpuPerMessageToCeiling: cpuToCeiling,
    throughput: {
      fleetToCeiling: ratio(fleet?.msgsPerSecond, ceiling?.msgsPerSecond),
      fleetToPerMessage: ratio(fleet?.msgsPerSecond, perMessage?.msgsPerSecond),
    },
    p99Latency: {
      fleetToCeiling: ratio(fleet?.latencyMs?.p99, ceiling?.latencyMs?.p99),
      fleetToPerMessage: ratio(fleet?.latencyMs?.p99, perMessage?.latencyMs?.p99),
    },
  };
}

/** In steady mode: consumed clearly slower than offered, so a backlog built up and latency tells of it. */
function fellBehind(result: ScenarioResult): boolean {
  return result.offeredRate !== undefined && result.msgsPerSecond < 0.95 * result.offeredRate;
}

const COLUMNS = [
  'scenario',
  'msgs/s',
  'orders/s',
  'drain s',
  'p50 ms',
  'p95 ms',
  'p99 ms',
  'peak RSS MB/proc',
  'cpu µs/msg',
  'x ceiling',
  'PG µs/msg',
  'MQ µs/msg',
  'bench µs/msg',
  'host busy %',
] as const;

function row(result: ScenarioResult, cpuRatios: Ratios['cpuPerMessageToCeiling']): string[] {
  const latency = result.latencyMs;
  const cpuRatio = cpuRatios[result.scenario];
  return [
    SCENARIOS[result.scenario] +
      (!result.complete ? ' (TIMED OUT)' : fellBehind(result) ? ' (fell behind)' : ''),
    whole(result.msgsPerSecond),
    result.scenario === 'ceiling' ? '—' : whole(result.ordersPerSecond),
    result.drainSeconds === undefined ? '—' : result.drainSeconds.toFixed(1),
    whole(latency?.p50),
    whole(latency?.p95),
    whole(latency?.p99),
    result.peakRssMb.join(' / ') || '—',
    formatConsumerCpu(result.cpu),
    cpuRatio === undefined ? '—' : `${cpuRatio}×`,
    formatMicroseconds(result.cpu ? result.cpu.postgresUs : null),
    formatMicroseconds(result.cpu ? result.cpu.rabbitmqUs : null),
    formatMicroseconds(result.cpu ? result.cpu.benchUs : null),
    formatPercent(result.cpu ? result.cpu.hostBusyPercent : null),
  ];
}

export function formatTable(mode: BenchMode, results: ScenarioResult[], heading: string): string {
  const allRatios = ratios(results);
  const rows = [[...COLUMNS], ...results.map((result) => row(result, allRatios.cpuPerMessageToCeiling))];
  const widths = COLUMNS.map((_, column) => Math.max(...rows.map((cells) => (cells[column] ?? '').length)));
  const lines = rows.map((cells) =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[0] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join('  '),
  );
  lines.splice(1, 0, widths.map((width) => '-'.repeat(width)).join('  '));
  const { throughput, p99Latency, cpuPerMessageToCeiling } = allRatios;
  const show = (value: number | undefined) => (value === undefined ? '—' : `${value}×`);
  return [
    '',
    `${mode.toUpperCase()}: ${heading}`,
    ...lines,
    `fleet/ceiling:     msgs/s ${show(throughput.fleetToCeiling)}   p99 latency ${show(p99Latency.fleetToCeiling)}   cpu/msg ${show(cpuPerMessageToCeiling.fleet)}`,
    `fleet/per-message: msgs/s ${show(throughput.fleetToPerMessage)}   p99 latency ${show(p99Latency.fleetToPerMessage)}`,
    `worker/ceiling:    cpu/msg ${show(cpuPerMessageToCeiling.worker)}`,
    '',
  ].join('\n');
}

/** The whole run in one JSON line, for scripts and for pasting into docs/benchmarks.md. */
export function summaryJson(
  settings: Record<string, unknown>,
  byMode: Partial<Record<BenchMode, ScenarioResult[]>>,
): string {
  const modes = Object.fromEntries(
    Object.entries(byMode).map(([mode, results]) => [
      mode,
      {
        ratios: ratios(results),
        results: Object.fromEntries(
          results.map((result) => [
            result.scenario,
            {
              msgsPerSecond: Math.round(result.msgsPerSecond),
              ordersPerSecond: Math.round(result.ordersPerSecond),
              drainSeconds:
                result.drainSeconds === undefined ? undefined : Number(result.drainSeconds.toFixed(2)),
              latencyMs: result.latencyMs && {
                p50: Math.round(result.latencyMs.p50),
                p95: Math.round(result.latencyMs.p95),
                p99: Math.round(result.latencyMs.p99),
              },
              peakRssMb: result.peakRssMb,
              cpuUsPerMessage: result.cpu && cpuJson(result.cpu),
              offeredRate: result.offeredRate,
              complete: result.complete,
            },
          ]),
        ),
      },
    ]),
  );
  return JSON.stringify({ bench: 'flashsale-worker', ...settings, modes });
}

const oneDecimal = (value: number) => Number(value.toFixed(1));

/** `value` rounded by `round`; null (not readable) and undefined (not measured) as they are. */
function roundedOr<Absent extends null | undefined>(
  value: number | Absent,
  round: (value: number) => number,
): number | Absent {
  return value === null || value === undefined ? value : round(value);
}

/**
 * CPU per message for the JSON line, in microseconds, and the host's busy share in percent: null where they
 * could not be read.
 */
function cpuJson(cpu: CpuPerMessage) {
  return {
    consumers: oneDecimal(cpu.consumerUs),
    perProcess: cpu.perProcessUs.map(oneDecimal),
    postgres: roundedOr(cpu.postgresUs, oneDecimal),
    rabbitmq: roundedOr(cpu.rabbitmqUs, oneDecimal),
    bench: roundedOr(cpu.benchUs, oneDecimal),
    hostBusyPercent: roundedOr(cpu.hostBusyPercent, Math.round),
    windowMs: cpu.windowMs,
  };
}
