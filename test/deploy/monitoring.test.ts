/** Alert rules, the Prometheus config and the Grafana dashboard under deploy/, checked against the metrics. */
import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { MESSAGE_OUTCOMES, METRIC_NAMES } from '../../src/observability/metric-names.js';

const DEPLOY = resolve(import.meta.dirname, '../../deploy');
const HISTOGRAM_SUFFIX = /_(bucket|sum|count)$/;
// Words of PromQL that look like metric names but are not.
const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'Inf', 'NaN']);

/**
 * The metric names an expression reads: identifiers outside strings, label matchers, ranges and grouping
 * clauses that are not function or aggregation calls. Grafana variables ($job, $__rate_interval) are ignored.
 */
function metricsIn(expression: string): string[] {
  const bare = expression
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\b(group_left|group_right)\b/g, ' ')
    .replace(/\$\w+/g, ' ');
  const names = bare.match(/(?<![\w.$])[a-zA-Z_:][\w:]*(?![\w:]|\s*\()/g) ?? [];
  return [...new Set(names.filter((name) => !PROMQL_KEYWORDS.has(name)))];
}

/** Whether the worker (or Node's default metrics, or Prometheus itself) exports this series name. */
function isExported(name: string): boolean {
  return (
    METRIC_NAMES.includes(name) ||
    METRIC_NAMES.includes(name.replace(HISTOGRAM_SUFFIX, '')) ||
    name.startsWith('process_') ||
    name.startsWith('nodejs_') ||
    name === 'up'
  );
}

/** The anchors GitHub gives a Markdown document's headings: lower case, punctuation dropped, spaces as dashes. */
function headingAnchors(markdown: string): string[] {
  return [...markdown.matchAll(/^#{1,6}\s+(.+)$/gm)].map(([, heading = '']) =>
    heading
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-'),
  );
}

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: { severity?: string };
  annotations?: { summary?: string; runbook_url?: string };
}
interface Panel {
  type: string;
  title: string;
  panels?: Panel[];
  targets?: { expr: string; refId: string }[];
  datasource?: { type: string; uid: string };
}

const alerts = parse(readFileSync(resolve(DEPLOY, 'prometheus/alerts.yml'), 'utf8')) as {
  groups: { name: string; rules: AlertRule[] }[];
};
const rules = alerts.groups.flatMap((group) => group.rules);
const dashboard = JSON.parse(readFileSync(resolve(DEPLOY, 'grafana/flashsale-dashboard.json'), 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string }[] };
};
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
const dashboardExpressions = panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
const rule = (name: string) => rules.find((candidate) => candidate.alert === name);

describe('metricsIn', () => {
  it('finds metric names and leaves out functions, labels, ranges and keywords', () => {
    expect(
      metricsIn(
        'sum by (queue) (rate(flashsale_messages_total{outcome="failed", job=~"$job"}[5m])) / clamp_min(up, 1e-9) and on (queue) flashsale_dlq_depth offset 5m',
      ),
    ).toEqual(['flashsale_messages_total', 'up', 'flashsale_dlq_depth']);
  });

  it('catches a misspelt metric', () => {
    const names = metricsIn('rate(flashsale_mesages_total[5m])');
    expect(names).toEqual(['flashsale_mesages_total']);
    expect(names.filter((name) => !isExported(name))).toEqual(['flashsale_mesages_total']);
  });
});

describe('deploy/prometheus/alerts.yml', () => {
  it('reads only metrics the worker exports', () => {
    const unknown = rules.flatMap((candidate) =>
      metricsIn(candidate.expr)
        .filter((name) => !isExported(name))
        .map((name) => `${candidate.alert}: ${name}`),
    );
    expect(rules.length).toBeGreaterThan(0);
    expect(unknown).toEqual([]);
  });

  it('gives every rule a unique name, a severity and a summary', () => {
    const names = rules.map((candidate) => candidate.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const candidate of rules) {
      expect({ alert: candidate.alert, severity: candidate.labels?.severity }).toEqual({
        alert: candidate.alert,
        severity: expect.stringMatching(/^(warning|critical)$/),
      });
      expect(candidate.annotations?.summary).toEqual(expect.any(String));
    }
  });

  it('alerts on failures, a growing DLQ, a paused consumer, a rising queue, audit drops and a worker down', () => {
    expect(rule('FlashsaleFailureRateHigh')?.expr).toMatch(/flashsale_messages_total\{outcome="failed"\}/);
    expect(MESSAGE_OUTCOMES).toContain('failed');
    expect(metricsIn(rule('FlashsaleDeadLetterQueueGrowing')?.expr ?? '')).toEqual(['flashsale_dlq_depth']);
    expect(rule('FlashsaleConsumerPaused')).toMatchObject({
      expr: 'flashsale_consumer_paused == 1',
      for: '1m',
    });
    expect(metricsIn(rule('FlashsaleQueueDepthRising')?.expr ?? '')).toEqual(['flashsale_queue_depth']);
    expect(metricsIn(rule('FlashsaleAuditEventsDropped')?.expr ?? '')).toEqual([
      'flashsale_audit_events_dropped_total',
    ]);
    expect(metricsIn(rule('FlashsaleWorkerDown')?.expr ?? '')).toEqual(['up']);
  });

  it('links every rule to its runbook: a section of a document in this repository', () => {
    const broken = rules.flatMap((candidate) => {
      const url = candidate.annotations?.runbook_url ?? '';
      const [path = '', anchor = ''] = url.split('#');
      const file = resolve(DEPLOY, '..', path);
      if (!path || !anchor || !existsSync(file)) return [`${candidate.alert}: ${url || 'no runbook_url'}`];
      return headingAnchors(readFileSync(file, 'utf8')).includes(anchor)
        ? []
        : [`${candidate.alert}: ${url}`];
    });
    expect(broken).toEqual([]);
  });

  it('is the rule file the compose Prometheus loads, for the job that scrapes the workers', () => {
    const config = parse(readFileSync(resolve(DEPLOY, 'prometheus/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; port: number }[] }[];
    };
    expect(config.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    const workers = config.scrape_configs.find((scrape) => scrape.job_name === 'flashsale-worker');
    expect(workers?.dns_sd_configs).toEqual([expect.objectContaining({ names: ['worker'], port: 3000 })]);
    const jobs = new Set(
      rules.flatMap((candidate) => [...candidate.expr.matchAll(/job="([^"]+)"/g)].map((m) => m[1])),
    );
    expect([...jobs]).toEqual(['flashsale-worker']);
  });
});

describe('deploy/grafana/flashsale-dashboard.json', () => {
  it('reads only metrics the worker exports', () => {
    const unknown = dashboardExpressions.flatMap((expression) =>
      metricsIn(expression).filter((name) => !isExported(name)),
    );
    expect(dashboardExpressions.length).toBeGreaterThan(0);
    expect(unknown).toEqual([]);
  });

  it('charts every metric the worker exports, and its memory', () => {
    const charted = new Set(
      dashboardExpressions.flatMap((expression) =>
        metricsIn(expression).map((name) => name.replace(HISTOGRAM_SUFFIX, '')),
      ),
    );
    expect(METRIC_NAMES.filter((name) => !charted.has(name))).toEqual([]);
    expect(charted).toContain('process_resident_memory_bytes');
  });

  it('shows publish→commit latency as p50, p95 and p99 of the histogram', () => {
    const latency = dashboardExpressions.filter((expression) =>
      expression.includes('flashsale_publish_to_commit_seconds_bucket'),
    );
    const quantiles = latency.map((expression) => /histogram_quantile\((0\.\d+)/.exec(expression)?.[1]);
    expect(quantiles).toEqual(['0.5', '0.95', '0.99']);
  });

  it('queries the datasource chosen in its variable, so it imports into any Grafana', () => {
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource' }),
    );
    for (const panel of panels.filter((candidate) => candidate.type !== 'row')) {
      expect({ title: panel.title, datasource: panel.datasource }).toEqual({
        title: panel.title,
        datasource: { type: 'prometheus', uid: '${datasource}' },
      });
    }
  });

  it('is the dashboard the compose Grafana provisions, next to the compose Prometheus', () => {
    const provider = parse(
      readFileSync(resolve(DEPLOY, 'grafana/provisioning/dashboards/flashsale.yml'), 'utf8'),
    ) as {
      providers: { options: { path: string } }[];
    };
    const datasources = parse(
      readFileSync(resolve(DEPLOY, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8'),
    ) as {
      datasources: { type: string; url: string }[];
    };
    const compose = readFileSync(resolve(DEPLOY, '../docker-compose.yml'), 'utf8');
    const dashboardsPath = provider.providers[0]?.options.path ?? '<none>';
    expect(compose).toContain(
      `./deploy/grafana/flashsale-dashboard.json:${dashboardsPath}/flashsale-dashboard.json`,
    );
    expect(datasources.datasources).toEqual([
      expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090' }),
    ]);
  });
});
