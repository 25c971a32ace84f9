import { safeText } from '@flashsale/contract';
import { z } from 'zod';

/**
 * Every setting of the example API, read from the environment: one line of meaning, its unit and its default.
 * The README lists the same names. A bad value stops the API at start-up with the setting and the rule.
 */
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const amqpUrls = z
  .string()
  .min(1)
  .refine(
    (value) =>
      value
        .split(',')
        .every((url) => URL.canParse(url.trim()) && /^amqps?:$/.test(new URL(url.trim()).protocol)),
    'must be amqp:// or amqps:// URLs, comma-separated',
  );

export const apiSettingsSchema = z.object({
  /** Broker to publish to: one URL, or the nodes of a cluster comma-separated. */
  RABBITMQ_URL: amqpUrls.default('amqp://guest:guest@127.0.0.1:5672'),
  /** Queue the worker fleet consumes purchases from. */
  PURCHASE_QUEUE: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\w.:-]+$/, 'letters, digits and . _ : - only')
    .default('purchase'),
  /** Port the API listens on; 0 picks a free one. */
  HTTP_PORT: int(0, 65535).default(8080),
  /** Largest request body accepted, in bytes; a larger one is answered 413. */
  MAX_BODY_BYTES: int(256, 1024 * 1024).default(16 * 1024),
  /** Longest a purchase waits for the broker's confirm before the API answers 503, in milliseconds. */
  PUBLISH_TIMEOUT_MS: int(100, 120_000).default(5000),
  /** Publishes awaiting a confirm at once; past it a purchase is answered 503 at once (back-pressure). */
  MAX_PENDING_PUBLISHES: int(1, 1_000_000).default(10_000),
  /** Longest `?wait=true` waits for the order's outcome before the API answers 504, in milliseconds. */
  ORDER_WAIT_TIMEOUT_MS: int(100, 120_000).default(10_000),
  /** The `Retry-After` of a 503, in seconds. */
  RETRY_AFTER_S: int(1, 3600).default(1),
});

export type ApiSettings = z.output<typeof apiSettingsSchema>;

/** Injection token of the validated settings. */
export const API_SETTINGS = Symbol('API_SETTINGS');

/** A setting the API cannot start with; names the setting and the rule. */
export class InvalidApiSettingsError extends Error {
  override readonly name = 'InvalidApiSettingsError';
  constructor(readonly problems: string[]) {
    super(`invalid settings:\n  ${problems.join('\n  ')}`);
  }
}

/** Reads the settings from `env` (empty strings count as unset) or throws naming every bad one. */
export function parseApiSettings(env: NodeJS.ProcessEnv): ApiSettings {
  const present = Object.fromEntries(
    Object.entries(env).filter(([key, value]) => key in apiSettingsSchema.shape && value !== ''),
  );
  const parsed = apiSettingsSchema.safeParse(present);
  if (parsed.success) return parsed.data;
  throw new InvalidApiSettingsError(
    parsed.error.issues.map((issue) => {
      const name = issue.path.join('.');
      // A broker URL may carry a password: name the setting, never echo its value.
      const shown = name.endsWith('_URL')
        ? ' (value hidden)'
        : `=${JSON.stringify(safeText(env[name] ?? '', 100))}`;
      return `${name}${shown}: ${issue.message}`;
    }),
  );
}
