/** docker-compose.yml, read as data (no Docker engine needed). */
import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { splitNodeUrls } from '../../src/common/broker-nodes.js';
import { settingsSchema } from '../../src/config/settings.js';
import { apiSettingsSchema } from '../../examples/flash-sale-api/src/settings.js';

const ROOT = resolve(import.meta.dirname, '../..');
// main.ts forces an exit this long after SHUTDOWN_DEADLINE_MS; Docker must not SIGKILL before then.
const SHUTDOWN_WATCHDOG_MARGIN_S = 2;

interface Service {
  image?: string;
  hostname?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string>;
  ports?: unknown[];
  expose?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  profiles?: string[];
  stop_grace_period?: string;
  restart?: string;
  volumes?: string[];
  deploy?: { replicas?: number | string };
}

const compose = parse(readFileSync(resolve(ROOT, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const service = (name: string): Service => {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
};
const worker = service('worker');

/** Compose's `${NAME:-default}` / `${NAME}` interpolation, with every variable unset. */
const interpolateDefaults = (value: string) =>
  value.replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_match, _name: string, fallback?: string) => fallback ?? '');

/** `30s`, `1m30s`, `1500ms` in seconds. */
function durationSeconds(duration: string): number {
  const parts = [...duration.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.map(([part]) => part).join('') !== duration) throw new Error(`not a duration: ${duration}`);
  const unit = { h: 3600, m: 60, s: 1, ms: 0.001 } as const;
  return parts.reduce(
    (total, [, amount, suffix]) => total + Number(amount) * unit[suffix as keyof typeof unit],
    0,
  );
}

/** The worker's environment as the container sees it when no variable is set on the host. */
const workerEnvironment = Object.fromEntries(
  Object.entries(worker.environment ?? {}).map(([key, value]) => [key, interpolateDefaults(value)]),
);

const joined = (value: string[] | string | undefined) =>
  Array.isArray(value) ? value.join(' ') : (value ?? '');

describe('docker-compose.yml', () => {
  it('gives the worker no host port, so `--scale worker=N` starts N replicas', () => {
    expect(worker.ports).toBeUndefined();
    expect(worker.expose).toEqual([String(settingsSchema.parse({}).HTTP_PORT)]);
  });

  it('starts the worker only once the broker and the database are healthy and the migrations succeeded', () => {
    expect(worker.depends_on).toEqual({
      rabbitmq: { condition: 'service_healthy' },
      postgres: { condition: 'service_healthy' },
      migrate: { condition: 'service_completed_successfully' },
    });
  });

  it('gives the broker and the database a health check', () => {
    expect(joined(service('rabbitmq').healthcheck?.test)).toMatch(/rabbitmq-diagnostics/);
    expect(joined(service('postgres').healthcheck?.test)).toMatch(/pg_isready/);
  });

  it('keeps the image HEALTHCHECK on the worker, which the load test waits for', () => {
    expect(worker.healthcheck?.disable).not.toBe(true);
    expect(readFileSync(resolve(ROOT, 'Dockerfile'), 'utf8')).toMatch(
      /^HEALTHCHECK [^\n]*\\\n[^\n]*\/health/m,
    );
    expect(service('loadtest').depends_on).toEqual({ worker: { condition: 'service_healthy' } });
  });

  it('waits longer than the shutdown deadline before killing a draining worker', () => {
    const deadlineMs = settingsSchema.parse(workerEnvironment).SHUTDOWN_DEADLINE_MS;
    expect(worker.stop_grace_period).toBeDefined();
    expect(durationSeconds(worker.stop_grace_period ?? '0s')).toBeGreaterThan(
      deadlineMs / 1000 + SHUTDOWN_WATCHDOG_MARGIN_S,
    );
  });

  it('restarts a worker that exits', () => {
    expect(worker.restart).toMatch(/^(always|unless-stopped|on-failure)/);
  });

  it('runs the migrations once, with the worker image, after the database is healthy', () => {
    const migrate = service('migrate');
    expect(migrate.image).toBe(worker.image);
    expect(joined(migrate.command)).toBe('node dist/src/tools/migrate/migrate.js');
    expect(migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(migrate.restart).toBe('no');
  });

  it('offers the load test, with the worker image, under the loadtest profile only', () => {
    const loadtest = service('loadtest');
    expect(loadtest.profiles).toEqual(['loadtest']);
    expect(loadtest.image).toBe(worker.image);
    expect(joined(loadtest.entrypoint)).toBe('node dist/scripts/loadtest.js');
  });

  it('starts only the fleet and the example API by default: load test and monitoring wait for their profiles', () => {
    const profiles = Object.fromEntries(
      Object.entries(compose.services).map(([name, definition]) => [name, definition.profiles ?? []]),
    );
    expect(profiles).toEqual({
      rabbitmq: [],
      postgres: [],
      migrate: [],
      worker: [],
      loadtest: ['loadtest'],
      api: [],
      prometheus: ['monitoring'],
      grafana: ['monitoring'],
      'dev-rabbitmq': ['dev'],
      'dev-postgres': ['dev'],
      'rabbitmq-1': ['cluster'],
      'rabbitmq-2': ['cluster'],
      'rabbitmq-3': ['cluster'],
      'cluster-worker': ['cluster'],
    });
  });

  describe('the cluster profile', () => {
    const nodes = ['rabbitmq-1', 'rabbitmq-2', 'rabbitmq-3'];
    const clusterConf = readFileSync(resolve(ROOT, 'deploy/rabbitmq-cluster/cluster.conf'), 'utf8');

    it('forms one cluster of 3 nodes: one Erlang cookie, classic config peer discovery naming every node', () => {
      const cookies = nodes.map((name) => service(name).environment?.RABBITMQ_ERLANG_COOKIE);
      expect(cookies[0]).toBeTruthy();
      expect(new Set(cookies).size).toBe(1);
      expect(clusterConf).toMatch(/^cluster_formation\.peer_discovery_backend = classic_config$/m);
      for (const [index, name] of nodes.entries()) {
        expect(service(name).hostname).toBe(name);
        expect(clusterConf).toContain(`cluster_formation.classic_config.nodes.${index + 1} = rabbit@${name}`);
        expect(joined(service(name).healthcheck?.test)).toMatch(/rabbitmq-diagnostics/);
        expect(service(name).volumes).toContain(
          './deploy/rabbitmq-cluster/cluster.conf:/etc/rabbitmq/conf.d/20-cluster.conf:ro',
        );
      }
    });

    it('gives its workers every node, and otherwise the settings of the default fleet', () => {
      const clusterWorker = service('cluster-worker');
      const environment = Object.fromEntries(
        Object.entries(clusterWorker.environment ?? {}).map(([key, value]) => [
          key,
          interpolateDefaults(value),
        ]),
      );
      const parsed = settingsSchema.parse(environment);
      expect(splitNodeUrls(parsed.RABBITMQ_URL).map((url) => new URL(url).hostname)).toEqual(nodes);
      expect({ ...environment, RABBITMQ_URL: undefined }).toEqual({
        ...workerEnvironment,
        RABBITMQ_URL: undefined,
      });
      expect(clusterWorker.image).toBe(worker.image);
      expect(clusterWorker.stop_grace_period).toBe(worker.stop_grace_period);
      expect(clusterWorker.depends_on).toEqual({
        ...Object.fromEntries(nodes.map((name) => [name, { condition: 'service_healthy' }])),
        postgres: { condition: 'service_healthy' },
        migrate: { condition: 'service_completed_successfully' },
      });
    });
  });

  describe('the example API', () => {
    const api = service('api');
    const build = (api.build ?? {}) as { context?: string; dockerfile?: string };
    const dockerfile = readFileSync(resolve(ROOT, build.context ?? '', build.dockerfile ?? ''), 'utf8');
    const environment = Object.fromEntries(
      Object.entries(api.environment ?? {}).map(([key, value]) => [key, interpolateDefaults(value)]),
    );

    it("publishes to the fleet's queue on the fleet's broker, with settings it accepts", () => {
      const parsed = apiSettingsSchema.safeParse(environment);
      expect(parsed.error?.issues ?? []).toEqual([]);
      expect(Object.keys(environment).filter((key) => !(key in apiSettingsSchema.shape))).toEqual([]);
      expect(environment.RABBITMQ_URL).toBe(workerEnvironment.RABBITMQ_URL);
      expect(environment.PURCHASE_QUEUE).toBe(workerEnvironment.PURCHASE_QUEUE);
    });

    it('listens on 8080, published on loopback, and starts once the broker is healthy', () => {
      expect((api.ports ?? []).map((port) => interpolateDefaults(String(port)))).toEqual([
        `127.0.0.1:8080:${environment.HTTP_PORT}`,
      ]);
      expect(api.depends_on).toEqual({ rabbitmq: { condition: 'service_healthy' } });
      expect(api.restart).toMatch(/^(always|unless-stopped|on-failure)/);
    });

    it('builds from the repository root with a Dockerfile whose every COPY source exists and whose CMD is the built API', () => {
      expect(build.context).toBe('.');
      const sources = dockerfile
        .replace(/\\\n/g, ' ')
        .split('\n')
        .filter((line) => /^COPY\s/.test(line) && !line.includes('--from='))
        .flatMap((line) => line.trim().split(/\s+/).slice(1, -1));
      expect(sources.length).toBeGreaterThan(0);
      expect(sources.filter((source) => !existsSync(resolve(ROOT, source)))).toEqual([]);
      const example = resolve(ROOT, 'examples/flash-sale-api');
      const tsconfig = JSON.parse(readFileSync(resolve(example, 'tsconfig.json'), 'utf8')) as {
        compilerOptions: { rootDir: string; outDir: string };
      };
      expect(existsSync(resolve(example, tsconfig.compilerOptions.rootDir, 'main.ts'))).toBe(true);
      expect(dockerfile).toContain(
        `CMD ["node", "examples/flash-sale-api/${tsconfig.compilerOptions.outDir}/main.js"]`,
      );
      expect(dockerfile).toMatch(/^HEALTHCHECK [^\n]*\\\n[^\n]*\/health/m);
    });
  });

  it('gives worker, migrations and load test the same broker and database, by service name', () => {
    const environments = ['worker', 'migrate', 'loadtest'].map((name) => service(name).environment ?? {});
    for (const environment of environments) expect(environment).toEqual(worker.environment);
    const urls = settingsSchema.parse(workerEnvironment);
    expect(new URL(urls.RABBITMQ_URL).hostname).toBe('rabbitmq');
    expect(new URL(urls.DATABASE_URL).hostname).toBe('postgres');
    expect(new URL(urls.DATABASE_URL).pathname).toBe(
      `/${joined(service('postgres').environment?.POSTGRES_DB)}`,
    );
  });

  it('sets only settings the worker knows, each with a valid value', () => {
    const known = Object.keys(settingsSchema.in.shape);
    const environment = worker.environment ?? {};
    expect(Object.keys(environment).filter((key) => !known.includes(key))).toEqual([]);
    const parsed = settingsSchema.safeParse(workerEnvironment);
    expect(parsed.error?.issues ?? []).toEqual([]);
  });

  it('mounts only files that exist and declares every named volume', () => {
    for (const [name, definition] of Object.entries(compose.services)) {
      for (const volume of definition.volumes ?? []) {
        const [source = ''] = volume.split(':');
        if (source.startsWith('.')) {
          expect({ name, source, exists: existsSync(resolve(ROOT, source)) }).toEqual({
            name,
            source,
            exists: true,
          });
        } else {
          expect(Object.keys(compose.volumes ?? {})).toContain(source);
        }
      }
    }
  });

  it('keeps the number of workers across every `up`: WORKERS sets deploy.replicas, documented commands never --scale', () => {
    expect(worker.deploy?.replicas).toMatch(/^\$\{WORKERS:-\d+\}$/);
    expect(Number(interpolateDefaults(String(worker.deploy?.replicas)))).toBeGreaterThanOrEqual(1);
    const documents = ['README.md', 'docs/deployment.md', 'docker-compose.yml'];
    const scaling = documents.flatMap((document) =>
      readFileSync(resolve(ROOT, document), 'utf8')
        .split('\n')
        .filter((line) => /docker compose\b.*\bup\b.*--scale/.test(line))
        .map((line) => `${document}: ${line.trim()}`),
    );
    expect(scaling).toEqual([]);
  });

  it("scrapes RabbitMQ's own metrics (rabbitmq_prometheus on 15692) beside the workers'", () => {
    const rabbitmq = service('rabbitmq');
    const plugins = (rabbitmq.volumes ?? []).find((volume) =>
      volume.includes(':/etc/rabbitmq/enabled_plugins'),
    );
    expect(plugins).toBeDefined();
    const pluginsFile = resolve(ROOT, (plugins ?? '').split(':')[0] ?? '');
    expect(readFileSync(pluginsFile, 'utf8')).toMatch(/^\[[^\]]*\brabbitmq_prometheus\b[^\]]*\]\.\s*$/);
    expect(rabbitmq.expose).toContain('15692');
    const prometheus = parse(readFileSync(resolve(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
      scrape_configs: { job_name: string; static_configs?: { targets: string[] }[] }[];
    };
    const targets = prometheus.scrape_configs.flatMap((scrape) =>
      (scrape.static_configs ?? []).flatMap((config) => config.targets),
    );
    expect(targets).toContain('rabbitmq:15692');
  });
});

describe('docker-compose.yml, profile dev', () => {
  const defaults = settingsSchema.parse({});
  const rabbitmqUrl = new URL(defaults.RABBITMQ_URL);
  const postgresUrl = new URL(defaults.DATABASE_URL);
  const published = (name: string) =>
    (service(name).ports ?? []).map((port) => interpolateDefaults(String(port)));

  it("publishes RabbitMQ where the worker's and the tests' default RABBITMQ_URL looks, on loopback only", () => {
    expect(published('dev-rabbitmq')).toContain(`${rabbitmqUrl.hostname}:${rabbitmqUrl.port}:5672`);
    for (const port of published('dev-rabbitmq')) expect(port).toMatch(/^127\.0\.0\.1:/);
  });

  it('lets the default guest user in through the published port', () => {
    expect(decodeURIComponent(rabbitmqUrl.username)).toBe('guest');
    const mounted = (service('dev-rabbitmq').volumes ?? []).filter((volume) =>
      volume.includes(':/etc/rabbitmq/conf.d/'),
    );
    const config = mounted
      .map((volume) => readFileSync(resolve(ROOT, volume.split(':')[0] ?? ''), 'utf8'))
      .join('\n');
    expect(config).toMatch(/^loopback_users\.guest\s*=\s*false$/m);
  });

  it('publishes PostgreSQL where the default DATABASE_URL looks, with its user and no password, on loopback only', () => {
    const postgres = service('dev-postgres');
    expect(published('dev-postgres')).toEqual([`${postgresUrl.hostname}:${postgresUrl.port}:5432`]);
    expect(postgresUrl.hostname).toBe('127.0.0.1');
    expect(postgresUrl.username).toBe('postgres');
    expect(postgres.environment).toMatchObject({
      POSTGRES_HOST_AUTH_METHOD: 'trust',
      POSTGRES_DB: postgresUrl.pathname.slice(1),
    });
    expect(postgres.environment?.POSTGRES_USER ?? 'postgres').toBe('postgres');
  });

  it("keeps its data apart from the fleet's broker and database", () => {
    const named = (name: string) => (service(name).volumes ?? []).filter((volume) => !volume.startsWith('.'));
    const fleet = [...named('rabbitmq'), ...named('postgres')].map((volume) => volume.split(':')[0]);
    const dev = [...named('dev-rabbitmq'), ...named('dev-postgres')].map((volume) => volume.split(':')[0]);
    expect(dev.length).toBe(2);
    expect(dev.filter((volume) => fleet.includes(volume))).toEqual([]);
  });
});
