import type { HttpLoadTestReport } from './http-load-test.js';

const number = new Intl.NumberFormat('en-US');
const n = (value: number) => number.format(Math.round(value)).padStart(9);
const ms = (value: number) => `${number.format(Math.round(value * 10) / 10)} ms`;
const check = (ok: boolean) => (ok ? 'ok' : 'MISMATCH');
const counts = (byStatus: Record<string, number>) =>
  Object.entries(byStatus)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, count]) => `${status} × ${number.format(count)}`)
    .join(', ');

/** The HTTP load test's report as a person reads it: what the API answered, then what the fleet persisted. */
export function formatHttpSummary(report: HttpLoadTestReport): string {
  const { http, purchases, poison } = report;
  const notAccepted = counts(purchases.notAccepted);
  const poisonOtherwise = counts(poison.otherwise);
  const commit = report.commitLatencyMs
    ? `p50 ${ms(report.commitLatencyMs.p50)}   p95 ${ms(report.commitLatencyMs.p95)}   ` +
      `p99 ${ms(report.commitLatencyMs.p99)}`
    : 'no orders';
  const lines = [
    '',
    `Load test through ${report.url} (queue "${report.queue}")`,
    `  requests answered    ${n(http.answered)}   of ${number.format(http.sent)} sent in ${http.seconds.toFixed(1)} s, ` +
      `${number.format(Math.round(http.requestsPerSecond))}/s` +
      (http.unanswered > 0 ? `, ${number.format(http.unanswered)} unanswered${cutOff(report)}` : '') +
      (http.errors > 0 ? `, ${number.format(http.errors)} connection errors or timeouts` : ''),
    `  HTTP status          ${counts(http.statusCounts) || 'none'}`,
    `  HTTP latency         p50 ${ms(http.latencyMs.p50)}   p90 ${ms(http.latencyMs.p90)}   ` +
      `p99 ${ms(http.latencyMs.p99)}   max ${ms(http.latencyMs.max)}`,
    `  purchases accepted   ${n(purchases.accepted)}   of ${n(purchases.sent)}   ` +
      (notAccepted ? `MISMATCH (${notAccepted})` : 'ok') +
      (purchases.unanswered > 0 ? `, ${number.format(purchases.unanswered)} unanswered` : ''),
    `  poison refused       ${n(poison.refusedAsExpected)}   of ${n(poison.sent)}   ` +
      (poisonOtherwise ? `MISMATCH (${poisonOtherwise})` : 'ok') +
      (poison.unanswered > 0 ? `, ${number.format(poison.unanswered)} unanswered` : ''),
    `  orders confirmed     ${n(report.orders)}   expected ${n(purchases.acceptedPairs)}   ` +
      check(report.missing.count === 0 && report.unexpected.count === 0),
  ];
  if (report.missing.count > 0) {
    lines.push(
      `    accepted, no order ${n(report.missing.count)}   e.g. ${report.missing.examples.join(', ')}`,
    );
  }
  if (report.unexpected.count > 0) {
    lines.push(
      `    order, not accepted${n(report.unexpected.count)}   e.g. ${report.unexpected.examples.join(', ')}`,
    );
  }
  lines.push(
    `  duplicates absorbed  ${n(purchases.accepted - purchases.acceptedPairs)}`,
    `  dead letters         ${n(report.deadLettered)}   expected ${n(0)}   ${check(report.deadLettered === 0)}`,
    `  throughput           ${n(report.ordersPerSecond)}   orders/s, first purchase to last commit`,
    `  API stamp→commit     ${commit}`,
  );
  if (!report.settled) lines.push(`  (still moving when the wait ended)`);
  lines.push(
    report.pass
      ? `PASS  ${number.format(report.orders)} orders for ${number.format(purchases.acceptedPairs)} accepted ` +
          `purchases, ${number.format(poison.refusedAsExpected)} poison requests refused`
      : `FAIL  ${failureReasons(report).join('; ')}`,
    '',
  );
  return lines.join('\n');
}

const cutOff = (report: HttpLoadTestReport) =>
  report.http.unansweredAllowed > 0 && report.http.unanswered <= report.http.unansweredAllowed
    ? ' (cut off when the duration ended)'
    : '';

const total = (counts: Record<string, number>) =>
  Object.values(counts).reduce((sum, count) => sum + count, 0);

function failureReasons(report: HttpLoadTestReport): string[] {
  const reasons: string[] = [];
  const { http } = report;
  if (http.sent === 0) reasons.push('no request was sent');
  if (http.errors > 0) reasons.push(`${number.format(http.errors)} connection errors or timeouts`);
  if (http.unanswered > http.unansweredAllowed)
    reasons.push(`${number.format(http.unanswered)} requests unanswered`);
  const notAccepted = total(report.purchases.notAccepted);
  if (notAccepted > 0) reasons.push(`${number.format(notAccepted)} purchases not accepted`);
  const poisonOtherwise = total(report.poison.otherwise);
  if (poisonOtherwise > 0)
    reasons.push(`${number.format(poisonOtherwise)} poison requests not refused as expected`);
  if (report.missing.count > 0)
    reasons.push(`${number.format(report.missing.count)} accepted purchases have no order`);
  if (report.unexpected.count > 0)
    reasons.push(`${number.format(report.unexpected.count)} orders never accepted`);
  if (report.deadLettered > 0) reasons.push(`${number.format(report.deadLettered)} dead letters`);
  return reasons;
}
