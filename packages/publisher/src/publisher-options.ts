/** The publisher's options, events and state, and the checks its options pass. */

export interface PurchasePublisherOptions {
  /** Broker URL, or several to round-robin between on reconnect. */
  url: string | string[];
  /** Queue the purchases go to, through the default exchange (routing key = queue name). Default `purchase`. */
  queue?: string;
  /** Most publishes awaiting a confirm, buffered while disconnected or in flight; past it publish rejects. Default 10 000. */
  maxPendingPublishes?: number;
  /** Longest wait for the broker's confirm of one publish, in milliseconds; 0 waits indefinitely. Default 30 000. */
  publishTimeoutMs?: number;
  /** Longest wait of `request` for the worker's reply, in milliseconds. Default 30 000. */
  replyTimeoutMs?: number;
  /** Declare the queue (durable, no arguments) on every connect. Default off: the worker owns the topology. */
  assertQueue?: boolean;
  /** Wait between two connection attempts, in milliseconds. Default 1000. */
  reconnectDelayMs?: number;
  /** Told about connection changes and setup failures; the publisher keeps going whatever it returns. */
  onConnectionEvent?: (event: PublisherConnectionEvent) => void;
}

export type PublisherConnectionEvent =
  | { type: 'connected'; url: string }
  | { type: 'disconnected' | 'connect-failed' | 'setup-failed'; error: Error }
  | { type: 'blocked'; reason: string }
  | { type: 'unblocked' };

export interface PublishOptions {
  /** AMQP `message-id`; a fresh UUID when absent. */
  messageId?: string;
  /** Extra AMQP headers. */
  headers?: Record<string, unknown>;
  /** Overrides `publishTimeoutMs` for this message (for `request`: `replyTimeoutMs`, the whole wait). */
  timeoutMs?: number;
}

/** What a health check needs to know: whether publishes can go out now, and if not, why. */
export interface PublisherState {
  /** Connected to a broker, with the channel set up. */
  connected: boolean;
  /** The broker's reason while it blocks publishing (a memory or disk alarm). */
  blockedReason: string | undefined;
  pendingPublishes: number;
  maxPendingPublishes: number;
  /** `close()` was called. */
  closed: boolean;
}

export function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

export function wholeMilliseconds(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0)
    throw new RangeError(`${name} must be a whole number of milliseconds, got ${value}`);
  return value;
}

/** True when `work` resolves within `ms`, false past it; rejects as `work` does before then. `work` goes on. */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A broker URL with its password replaced by `***`, for the `connected` event. */
export function redactUrl(url: unknown): string {
  if (typeof url !== 'string') return '(connection options)';
  if (!URL.canParse(url)) return '(a URL that does not parse)';
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.href;
}
