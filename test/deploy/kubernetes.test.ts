import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { settingsSchema } from '../../src/config/settings.js';

/** The kustomize manifests under deploy/k8s, read as data (no cluster needed). */
const K8S = resolve(import.meta.dirname, '../../deploy/k8s');
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
  Deployment: { replicas: number; selector: { matchLabels: Labels }; template: PodTemplate };
  Job: { template: PodTemplate };
  PodDisruptionBudget: { minAvailable?: number; maxUnavailable?: number; selector: { matchLabels: Labels } };
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

const kustomization = parseAllDocuments(
  readFileSync(resolve(K8S, 'kustomization.yaml'), 'utf8'),
)[0]!.toJS() as {
  resources: string[];
  images?: { name: string; newName?: string; newTag?: string }[];
};
const manifests: Manifest[] = kustomization.resources.flatMap((file) =>
  parseAllDocuments(readFileSync(resolve(K8S, file), 'utf8')).map((document) => document.toJS() as Manifest),
);

function only(kind: string): Manifest {
  const found = manifests.filter((manifest) => manifest.kind === kind);
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

  it('runs three replicas whose pods the Deployment selects', () => {
    expect(deploymentSpec.replicas).toBe(3);
    expect(labelsMatch(deploymentSpec.selector.matchLabels, podLabels)).toBe(true);
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

  it('exposes the metrics port of the worker pods through a Service', () => {
    const service = specOf('Service');
    expect(labelsMatch(service.selector, podLabels)).toBe(true);
    expect(service.ports).toContainEqual(expect.objectContaining({ targetPort: 'http' }));
  });

  it('migrates with the worker image and the same database', () => {
    const [migrate] = specOf('Job').template.spec.containers;
    expect(migrate?.image).toBe(worker.image);
    expect(migrate?.command).toEqual(['node', 'dist/src/database/migrate.js']);
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
    expect(scaling.maxReplicaCount).toBeGreaterThanOrEqual(deploymentSpec.replicas);
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
});
