import { redactCredentials } from './log-redaction.js';

// After losing a node the next one is tried at once (within this jitter); a full round of failed nodes
// doubles the wait, up to the cap, so a fleet facing a dead cluster neither hammers it nor retries in step.
const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 2000;

const DEFAULT_PORTS: Record<string, string> = { 'amqp:': '5672', 'amqps:': '5671' };

/** The URLs of a RABBITMQ_URL value: one broker (or a load balancer), or the nodes of a cluster, comma-separated. */
export function splitNodeUrls(value: string): string[] {
  return value
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
}

/**
 * What is wrong with a RABBITMQ_URL value, one line per problem, naming a node by its position and never by
 * its URL (a URL may carry a password). Empty when the value is a valid node list.
 */
export function nodeListProblems(value: string): string[] {
  const urls = splitNodeUrls(value);
  if (urls.length === 0) return ['names no broker node'];
  const where = (index: number) => (urls.length === 1 ? '' : `node ${index + 1} of ${urls.length}: `);
  const problems: string[] = [];
  urls.forEach((url, index) => {
    if (!URL.canParse(url)) problems.push(`${where(index)}not a valid URL`);
    else if (!/^amqps?:\/\//.test(url)) problems.push(`${where(index)}must start with amqp:// or amqps://`);
    else if (urls.indexOf(url) !== index) {
      problems.push(`${where(index)}repeats node ${urls.indexOf(url) + 1}`);
    }
  });
  return problems;
}

/** `host:port` of a node URL: how logs and /ready name a node, never with its credentials. */
export function nodeAddress(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || DEFAULT_PORTS[parsed.protocol] || '5672'}`;
}

/** FNV-1a: a stable, well-spread number from a worker's name. */
function hashOf(text: string): number {
  let hash = 0x811c9dc5;
  for (const char of text) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * The nodes in the order `workerId` tries them: the list rotated by a hash of the worker's name, so the
 * workers of a fleet start at different nodes, and a worker that loses its node moves on to the next one
 * around the ring instead of the whole fleet falling back onto the first node of the list.
 */
export function nodeOrderFor(urls: readonly string[], workerId: string): string[] {
  const start = hashOf(workerId) % urls.length;
  return [...urls.slice(start), ...urls.slice(0, start)];
}

/**
 * The broker nodes of one worker and which of them it is connected to: the list in this worker's order,
 * the node in use, and the jittered delay before the next connection attempt.
 */
export class BrokerNodes {
  readonly urls: readonly string[];
  private connectedUrl: string | undefined;
  private failedAttempts = 0;

  constructor(
    rabbitmqUrl: string,
    workerId: string,
    private readonly random: () => number = Math.random,
  ) {
    this.urls = nodeOrderFor(splitNodeUrls(rabbitmqUrl), workerId);
  }

  /** `host:port` of the node in use; undefined while disconnected. */
  get connected(): string | undefined {
    return this.connectedUrl === undefined ? undefined : nodeAddress(this.connectedUrl);
  }

  /** The node list in this worker's order, credentials redacted. */
  describe(): string {
    return this.urls.map((url) => redactCredentials(url)).join(', ');
  }

  /** `url` (redacted) with its position in this worker's order, e.g. `amqp://u:***@c2:5672 (node 2 of 3)`. */
  name(url: unknown): string {
    const text = String(url);
    const position = this.urls.indexOf(text);
    const of = this.urls.length > 1 && position >= 0 ? ` (node ${position + 1} of ${this.urls.length})` : '';
    return `${redactCredentials(text)}${of}`;
  }

  connectedTo(url: unknown): void {
    this.connectedUrl = String(url);
    this.failedAttempts = 0;
  }

  /** The connection to the node in use was lost: the delay before the next node is tried, in ms. */
  disconnected(): number {
    this.connectedUrl = undefined;
    return this.nextDelayMs();
  }

  /** An attempt at a node failed: the delay before the next node is tried, in ms. */
  attemptFailed(): number {
    this.failedAttempts += 1;
    return this.nextDelayMs();
  }

  /** Equal jitter on a ceiling that doubles with each full round of failed nodes. */
  private nextDelayMs(): number {
    const rounds = Math.floor(this.failedAttempts / this.urls.length);
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(rounds, 20));
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }
}
