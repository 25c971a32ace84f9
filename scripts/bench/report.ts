import { SCENARIOS, type BenchMode, type ScenarioName, type ScenarioResult } from './scenario.js';

const number = new Intl.NumberFormat('en-US');
const whole = (value: number | undefined) => (value === undefined ? '—' : number.format(Math.round(value)));

/** The fleet over a reference: msgs/s over msgs/s, and p99 latency over p99 latency. */
export interface Ratios {
  throughput: { fleetToCeiling?: number; fleetToPerMessage?: number };
  p99Latency: { fleetToCeiling?: number; fleetToPerMessage?: number };
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
  return {
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
] as const;

function row(result: ScenarioResult): string[] {
  const latency = result.latencyMs;
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
  ];
}

export function formatTable(mode: BenchMode, results: ScenarioResult[], heading: string): string {
  const rows = [[...COLUMNS], ...results.map(row)];
  const widths = COLUMNS.map((_, column) => Math.max(...rows.map((cells) => (cells[column] ?? '').length)));
  const lines = rows.map((cells) =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[0] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join('  '),
  );
  lines.splice(1, 0, widths.map((width) => '-'.repeat(width)).join('  '));
  const { throughput, p99Latency } = ratios(results);
  const show = (value: number | undefined) => (value === undefined ? '—' : `${value}×`);
  return [
    '',
    `${mode.toUpperCase()}: ${heading}`,
    ...lines,
    `fleet/ceiling:     msgs/s ${show(throughput.fleetToCeiling)}   p99 latency ${show(p99Latency.fleetToCeiling)}`,
    `fleet/per-message: msgs/s ${show(throughput.fleetToPerMessage)}   p99 latency ${show(p99Latency.fleetToPerMessage)}`,
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
