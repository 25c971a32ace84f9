/** The kustomize manifests under deploy/k8s, read as data (no cluster needed). */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { settingsSchema } from '../../src/config/settings.js';

const ROOT = resolve(import.meta.dirname, '../..');
const K8S = resolve(ROOT, 'deploy/k8s');
// main.ts forces an exit this long after SHUTDOWN_DEADLINE_MS; the kubelet must not SIGKILL before then.
const SHUTDOWN_WATCHDOG_MARGIN_S = 2;
// PostgreSQL's default max_connections, less a few for superuser, migrations and operators.
const POSTGRES_CONNECTIONS_FOR_WORKERS = 90;
// Settings deliberately kept out of the ConfigMap: the connection URLs are in the Secret, DEAD_LETTER_QUEUE
// defaults to `<PURCHASE_QUEUE>.dlq`, WORKER_ID is the pod name.
const SECRET_SETTINGS = ['RABBITMQ_URL', 'DATABASE_URL'];
const DERIVED_SETTINGS = ['DEAD_LETTER_QUEUE', 'WORKER_ID'];

type Labels = Record<string, string>;
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  ports?: { name?: string; containerPort: number }[];
  envFrom?: unknown[];
  env?: unknown[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
}
interface PodTemplate {
  metadata: { labels: Labels; annotations?: Record<string, string> };
  spec: {
    containers: Container[];
    initContainers?: Container[];
    terminationGracePeriodSeconds?: number;
    securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  };
}
/** The fields of each kind these checks read. */
interface Specs {
  Deployment: { replicas?: number; selector: { matchLabels: Labels }; template: PodTemplate };
  Job: { template: PodTemplate };
  PodDisruptionBudget: {
    minAvailable?: number;
    maxUnavailable?: number;
    unhealthyPodEvictionPolicy?: string;
    selector: { matchLabels: Labels };
  };
  Service: { selector: Labels; ports: { port: number; targetPort: number | string }[] };
  ScaledObject: {
    scaleTargetRef: { apiVersion?: string; kind?: string; name: string };
    minReplicaCount: number;
    maxReplicaCount: number;
    triggers: { type: string; metadata: Record<string, string>; authenticationRef: { name: string } }[];
  };
  TriggerAuthentication: { secretTargetRef: { parameter: string; name: string; key: string }[] };
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Labels };
  spec?: unknown;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

interface Generator {
  name: string;
  envs?: string[];
}
interface Kustomization {
  resources: string[];
  components?: string[];
  replicas?: { name: string; count: number }[];
  configMapGenerator?: Generator[];
  secretGenerator?: Generator[];
  configurations?: string[];
  images?: { name: string; newName?: string; newTag?: string }[];
}

const readYaml = (path: string) =>
  parseAllDocuments(readFileSync(path, 'utf8')).map((document) => document.toJS() as unknown);

/** `KEY=value` lines as kustomize reads an env file: `#` lines are comments, the value is the rest of the line. */
function readEnvFile(path: string): Record<string, string> {
  const entries = readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .filter((line) => line.trim() && !line.trimStart().startsWith('#'))
    .map((line) => {
      const separator = line.indexOf('=');
      if (separator < 1) throw new Error(`${path}: not KEY=value: ${line}`);
      return [line.slice(0, separator), line.slice(separator + 1)] as const;
    });
  return Object.fromEntries(entries);
}

const kustomization = readYaml(resolve(K8S, 'kustomization.yaml'))[0] as Kustomization;
const [configGenerator] = kustomization.configMapGenerator ?? [];
const [secretGenerator] = kustomization.secretGenerator ?? [];
// secrets.env holds the real URLs and is git-ignored; its example file stands in for it here.
const SECRETS_ENV = secretGenerator?.envs?.[0] ?? '<none>';
const SECRETS_EXAMPLE = `${SECRETS_ENV}.example`;
const generated: Manifest[] = [
  {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: configGenerator?.name ?? '<none>' },
    data: Object.assign({}, ...(configGenerator?.envs ?? []).map((file) => readEnvFile(resolve(K8S, file)))),
  },
  {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: secretGenerator?.name ?? '<none>' },
    stringData: readEnvFile(resolve(K8S, SECRETS_EXAMPLE)),
  },
];
const manifests: Manifest[] = [
  ...kustomization.resources.flatMap((file) => readYaml(resolve(K8S, file)) as Manifest[]),
  ...generated,
];
// The optional component for the Prometheus Operator (ServiceMonitor, PrometheusRule).
const OPERATOR_COMPONENT = resolve(K8S, 'prometheus-operator');
const operatorManifests = (
  readYaml(resolve(OPERATOR_COMPONENT, 'kustomization.yaml'))[0] as { kind: string; resources: string[] }
).resources.flatMap((file) => readYaml(resolve(OPERATOR_COMPONENT, file)) as Manifest[]);

function only(kind: string, among: Manifest[] = manifests): Manifest {
  const found = among.filter((manifest) => manifest.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind} in deploy/k8s, found ${found.length}`);
  return found[0]!;
}
const specOf = <Kind extends keyof Specs>(kind: Kind) => only(kind).spec as Specs[Kind];

const deployment = only('Deployment');
const deploymentSpec = specOf('Deployment');
const podLabels = deploymentSpec.template.metadata.labels;
const podSpec = deploymentSpec.template.spec;
const worker = podSpec.containers.find((container) => container.name === 'worker')!;
const configMap = only('ConfigMap');
const secret = only('Secret');
const config = configMap.data ?? {};
const secretValues = secret.stringData ?? {};
const parsedSettings = settingsSchema.safeParse({ ...config, ...secretValues });
// Invalid values fail 'holds values the worker accepts at start-up'; the other checks go on with the defaults.
const settings = parsedSettings.data ?? settingsSchema.parse({});
const labelsMatch = (selector: Labels, labels: Labels) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);

describe('deploy/k8s', () => {
  it('lists only files that exist and parse to Kubernetes objects', () => {
    for (const file of kustomization.resources)
      expect({ file, exists: existsSync(resolve(K8S, file)) }).toEqual({ file, exists: true });
    for (const manifest of manifests) {
      expect(manifest).toMatchObject({
        apiVersion: expect.any(String),
        kind: expect.any(String),
        metadata: { name: expect.any(String) },
      });
    }
  });

  it('names only settings the worker knows in the ConfigMap and the Secret', () => {
    const known = Object.keys(settingsSchema.in.shape);
    expect(Object.keys(config).filter((key) => !known.includes(key))).toEqual([]);
    expect(Object.keys(secretValues).filter((key) => !known.includes(key))).toEqual([]);
  });

  it('gives every setting a value in the ConfigMap or the Secret, except those derived per pod', () => {
    const named = [...Object.keys(config), ...Object.keys(secretValues)]
      .filter((key) => !DERIVED_SETTINGS.includes(key))
      .sort();
    const expected = Object.keys(settingsSchema.in.shape)
      .filter((key) => !DERIVED_SETTINGS.includes(key))
      .sort();
    expect(named).toEqual(expected);
    expect(Object.keys(secretValues).sort()).toEqual([...SECRET_SETTINGS].sort());
  });

  it('holds values the worker accepts at start-up', () => {
    expect(parsedSettings.error?.issues ?? []).toEqual([]);
  });

  it('feeds the ConfigMap and the Secret to the worker, and the pod name as WORKER_ID', () => {
    expect(worker.envFrom).toEqual([
      { configMapRef: { name: configMap.metadata.name } },
      { secretRef: { name: secret.metadata.name } },
    ]);
    expect(worker.env).toContainEqual({
      name: 'WORKER_ID',
      valueFrom: { fieldRef: { fieldPath: 'metadata.name' } },
    });
  });

  it('selects the pods of its template', () => {
    expect(labelsMatch(deploymentSpec.selector.matchLabels, podLabels)).toBe(true);
  });

  it('leaves the number of pods to KEDA: no replicas on the Deployment it scales, nor in kustomization', () => {
    expect(specOf('ScaledObject').scaleTargetRef.name).toBe(deployment.metadata.name);
    expect(deploymentSpec.replicas).toBeUndefined();
    expect(kustomization.replicas ?? []).toEqual([]);
  });

  it('waits longer than the shutdown deadline before killing a draining worker', () => {
    expect(podSpec.terminationGracePeriodSeconds).toBeGreaterThan(
      settings.SHUTDOWN_DEADLINE_MS / 1000 + SHUTDOWN_WATCHDOG_MARGIN_S,
    );
  });

  it('probes liveness on /health and readiness on /ready, on the port the worker listens on', () => {
    const httpPort = worker.ports?.find((port) => port.name === 'http');
    expect(httpPort?.containerPort).toBe(settings.HTTP_PORT);
    expect(worker.startupProbe?.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(worker.livenessProbe?.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(worker.readinessProbe?.httpGet).toEqual({ path: '/ready', port: 'http' });
    const annotations = deploymentSpec.template.metadata.annotations;
    expect(annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(settings.HTTP_PORT),
      'prometheus.io/path': '/metrics',
    });
  });

  it('bounds CPU and memory', () => {
    expect(worker.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(worker.resources?.limits).toMatchObject({
      cpu: expect.any(String),
      memory: expect.stringMatching(/^\d+Mi$/),
    });
  });

  it('runs as a non-root user on a read-only root filesystem', () => {
    expect(podSpec.securityContext?.runAsNonRoot).toBe(true);
    // `USER node` in the image is a name: the kubelet can only verify runAsNonRoot against a numeric uid.
    expect(podSpec.securityContext?.runAsUser).toBeGreaterThan(0);
    for (const container of [...podSpec.containers, ...(podSpec.initContainers ?? [])]) {
      expect(container.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
      });
    }
  });

  it('limits voluntary disruptions to the worker pods', () => {
    const budget = specOf('PodDisruptionBudget');
    expect(budget.minAvailable ?? budget.maxUnavailable).toBeGreaterThanOrEqual(1);
    expect(labelsMatch(budget.selector.matchLabels, podLabels)).toBe(true);
    expect(labelsMatch(budget.selector.matchLabels, specOf('Job').template.metadata.labels)).toBe(false);
  });

  it('lets a node drain evict unready workers: a database outage makes them all unready at once', () => {
    expect(specOf('PodDisruptionBudget').unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
  });

  it('exposes the metrics port of the worker pods through a Service', () => {
    const service = specOf('Service');
    expect(labelsMatch(service.selector, podLabels)).toBe(true);
    expect(service.ports).toContainEqual(expect.objectContaining({ targetPort: 'http' }));
  });

  it('migrates with the worker image and the same database', () => {
    const [migrate] = specOf('Job').template.spec.containers;
    expect(migrate?.image).toBe(worker.image);
    expect(migrate?.command).toEqual(['node', 'dist/src/tools/migrate/migrate.js']);
    expect(migrate?.envFrom).toContainEqual({ secretRef: { name: secret.metadata.name } });
    for (const init of podSpec.initContainers ?? []) {
      expect({ image: init.image, command: init.command }).toEqual({
        image: worker.image,
        command: migrate?.command,
      });
    }
  });

  it('lets kustomize set the one image of the worker and the migration', () => {
    expect(kustomization.images?.map((image) => image.name)).toEqual([worker.image]);
  });

  it('scales the Deployment on the depth of the purchase queue with KEDA', () => {
    const scaledObject = only('ScaledObject');
    const scaling = specOf('ScaledObject');
    expect(scaledObject.apiVersion).toBe('keda.sh/v1alpha1');
    expect(scaling.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment.metadata.name });
    expect(scaling.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(scaling.maxReplicaCount).toBeGreaterThanOrEqual(scaling.minReplicaCount);
    const [trigger] = scaling.triggers;
    expect(trigger).toMatchObject({
      type: 'rabbitmq',
      metadata: { queueName: settings.PURCHASE_QUEUE, mode: 'QueueLength' },
    });
    expect(Number(trigger?.metadata.value)).toBeGreaterThan(0);
    const authentication = only('TriggerAuthentication');
    expect(trigger?.authenticationRef.name).toBe(authentication.metadata.name);
    expect(specOf('TriggerAuthentication').secretTargetRef).toEqual([
      { parameter: 'host', name: secret.metadata.name, key: 'RABBITMQ_URL' },
    ]);
  });

  it('keeps the largest fleet within the connections PostgreSQL allows', () => {
    const { maxReplicaCount } = specOf('ScaledObject');
    expect(maxReplicaCount * settings.DB_POOL_SIZE).toBeLessThanOrEqual(POSTGRES_CONNECTIONS_FOR_WORKERS);
  });

  it('generates the ConfigMap from an env file, so a change of settings rolls the pods', () => {
    const listed = kustomization.resources.flatMap((file) => readYaml(resolve(K8S, file)) as Manifest[]);
    expect(listed.filter((manifest) => manifest.kind === 'ConfigMap')).toEqual([]);
    expect(configGenerator?.envs?.length).toBeGreaterThan(0);
    expect(Object.keys(config).length).toBeGreaterThan(0);
  });

  it('generates the Secret from a git-ignored env file and ships only an example with placeholders', () => {
    const listed = kustomization.resources.flatMap((file) => readYaml(resolve(K8S, file)) as Manifest[]);
    expect(listed.filter((manifest) => manifest.kind === 'Secret')).toEqual([]);
    for (const file of kustomization.resources) {
      expect({ file, placeholder: /CHANGE_ME/.test(readFileSync(resolve(K8S, file), 'utf8')) }).toEqual({
        file,
        placeholder: false,
      });
    }
    expect(secretGenerator?.envs).toEqual([SECRETS_ENV]);
    const ignored = spawnSync('git', ['check-ignore', '-q', `deploy/k8s/${SECRETS_ENV}`], { cwd: ROOT });
    expect({ file: SECRETS_ENV, ignored: ignored.status === 0 }).toEqual({
      file: SECRETS_ENV,
      ignored: true,
    });
    expect(existsSync(resolve(K8S, SECRETS_EXAMPLE))).toBe(true);
    expect(
      spawnSync('git', ['check-ignore', '-q', `deploy/k8s/${SECRETS_EXAMPLE}`], { cwd: ROOT }).status,
    ).toBe(1);
  });

  it("points KEDA's TriggerAuthentication at the generated Secret, whose name kustomize suffixes", () => {
    const configurations = (kustomization.configurations ?? []).flatMap(
      (file) => readYaml(resolve(K8S, file)) as { nameReference?: unknown[] }[],
    );
    expect(configurations.flatMap((configuration) => configuration.nameReference ?? [])).toContainEqual(
      expect.objectContaining({
        kind: 'Secret',
        fieldSpecs: [
          expect.objectContaining({ kind: 'TriggerAuthentication', path: 'spec/secretTargetRef/name' }),
        ],
      }),
    );
  });
});

describe('deploy/k8s/prometheus-operator', () => {
  it('is a kustomize component that deploy/k8s offers', () => {
    const component = readYaml(resolve(OPERATOR_COMPONENT, 'kustomization.yaml'))[0] as { kind: string };
    expect(component.kind).toBe('Component');
    expect(readFileSync(resolve(K8S, 'kustomization.yaml'), 'utf8')).toMatch(
      /^#?\s*-\s*prometheus-operator$/m,
    );
  });

  it('scrapes the metrics Service of the workers as job flashsale-worker, the job of the alert rules', () => {
    const monitor = only('ServiceMonitor', operatorManifests);
    const service = only('Service');
    const spec = monitor.spec as {
      jobLabel?: string;
      selector: { matchLabels: Labels };
      endpoints: { port: string; path?: string }[];
    };
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(labelsMatch(spec.selector.matchLabels, service.metadata.labels ?? {})).toBe(true);
    expect(service.metadata.labels?.[spec.jobLabel ?? '']).toBe('flashsale-worker');
    const servicePorts = (service.spec as Specs['Service']).ports as { name?: string }[];
    expect(spec.endpoints).toEqual([expect.objectContaining({ path: '/metrics' })]);
    expect(servicePorts.map((port) => port.name)).toContain(spec.endpoints[0]?.port);
  });

  it('holds the alert rules of deploy/prometheus/alerts.yml as a PrometheusRule', () => {
    const rule = only('PrometheusRule', operatorManifests);
    const alerts = readYaml(resolve(K8S, '../prometheus/alerts.yml'))[0] as { groups: unknown[] };
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect((rule.spec as { groups: unknown[] }).groups).toEqual(alerts.groups);
  });
});

describe('deploy/k8s/components/cloudnative-pg', () => {
  const COMPONENT = resolve(K8S, 'components/cloudnative-pg');
  const component = readYaml(resolve(COMPONENT, 'kustomization.yaml'))[0] as {
    kind: string;
    resources: string[];
    patches: { path: string }[];
  };
  const cluster = only(
    'Cluster',
    component.resources.flatMap((file) => readYaml(resolve(COMPONENT, file)) as Manifest[]),
  );
  const clusterSpec = cluster.spec as {
    instances: number;
    postgresql: { synchronous?: { method: string; number: number; dataDurability?: string } };
    bootstrap: { initdb: { database: string; owner: string } };
  };
  const patches = component.patches.flatMap(
    (patch) => readYaml(resolve(COMPONENT, patch.path)) as Manifest[],
  );
  const patched = (kind: string) => {
    const patch = only(kind, patches);
    expect(patch.metadata.name).toBe(only(kind).metadata.name);
    return (patch.spec as { template: PodTemplate }).template.spec;
  };

  it('is a kustomize component that deploy/k8s offers', () => {
    expect(component.kind).toBe('Component');
    expect(readFileSync(resolve(K8S, 'kustomization.yaml'), 'utf8')).toMatch(
      /^#?\s*-\s*components\/cloudnative-pg$/m,
    );
  });

  it('runs three instances with a synchronous standby that every commit waits for', () => {
    expect(cluster.apiVersion).toBe('postgresql.cnpg.io/v1');
    expect(clusterSpec.instances).toBe(3);
    expect(clusterSpec.postgresql.synchronous).toEqual({
      method: 'any',
      number: 1,
      dataDurability: 'required',
    });
    expect(clusterSpec.postgresql.synchronous?.number).toBeLessThan(clusterSpec.instances);
  });

  it('creates the flashsale database with its owner', () => {
    expect(clusterSpec.bootstrap.initdb).toEqual({ database: 'flashsale', owner: 'flashsale' });
  });

  it("points every container that connects at the Cluster's -rw Service, through the operator's app Secret", () => {
    const fromClusterSecret = {
      name: 'DATABASE_URL',
      valueFrom: { secretKeyRef: { name: `${cluster.metadata.name}-app`, key: 'uri' } },
    };
    const deploymentPatch = patched('Deployment');
    const jobPatch = patched('Job');
    const connecting = [
      [podSpec.containers, deploymentPatch.containers],
      [podSpec.initContainers ?? [], deploymentPatch.initContainers ?? []],
      [specOf('Job').template.spec.containers, jobPatch.containers],
    ] as const;
    for (const [base, patch] of connecting) {
      for (const container of base.filter((container) => container.image === worker.image)) {
        const patchedContainer = patch.find((candidate) => candidate.name === container.name);
        expect({ container: container.name, env: patchedContainer?.env }).toEqual({
          container: container.name,
          env: [fromClusterSecret],
        });
      }
      expect(patch.map((container) => container.name).sort()).toEqual(
        base.map((container) => container.name).sort(),
      );
    }
  });
});
