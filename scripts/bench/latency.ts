import type { LatencyPercentiles } from './order-stats.js';

/** p50/p95/p99 of a set of samples (nearest rank), undefined without samples. */
export function percentiles(samples: number[]): LatencyPercentiles | undefined {
  if (samples.length === 0) return undefined;
  const sorted = Float64Array.from(samples).sort();
  const at = (quantile: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil(quantile * sorted.length) - 1)] ?? 0;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}
