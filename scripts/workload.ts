/**
 * A flash-sale burst as data: purchases of users in a few sales, some re-sent (duplicates), some poison.
 * The same seed and options give the same messages, so a run can be reproduced; the expected outcome
 * (orders, duplicates, dead letters) is counted here, not guessed by the caller.
 */

export interface WorkloadOptions {
  /** Messages in the burst. */
  count: number;
  /** Sales the purchases are spread over. */
  sales: number;
  /** Users buying (`user-1` … `user-<users>`). */
  users: number;
  /** Share of messages that re-send an earlier (saleId, userId), 0…1. */
  duplicateRate: number;
  /** Share of messages that are poison, 0…1. */
  poisonRate: number;
  /** PRNG seed; default 1. */
  seed?: number;
  /** Sale ids to use (at least `sales` of them); default derived from the seed. Fresh ones keep runs apart. */
  saleIds?: readonly string[];
  /** Size of an over-size poison body, in bytes; default 20 KiB (the worker refuses over 16 KiB by default). */
  oversizeBytes?: number;
}

export const POISON_KINDS = ['not-json', 'missing-field', 'bad-uuid', 'bad-timestamp', 'over-size'] as const;
export type PoisonKind = (typeof POISON_KINDS)[number];

export type WorkloadEntry =
  | { kind: 'purchase'; saleId: string; userId: string; resend: boolean }
  | { kind: 'poison'; poison: PoisonKind; body: Buffer };

export interface WorkloadExpectation {
  messages: number;
  /** Messages that satisfy the contract, duplicates included. */
  validMessages: number;
  /** Distinct (saleId, userId) among valid messages: the orders the burst must produce. */
  uniqueValidPairs: number;
  /** Valid messages that repeat an earlier pair: acked without a second order. */
  duplicates: number;
  /** Messages the worker must dead-letter. */
  poison: number;
  poisonByKind: Record<PoisonKind, number>;
}

export interface Workload {
  entries: WorkloadEntry[];
  saleIds: string[];
  expected: WorkloadExpectation;
}

/** mulberry32: small, fast, and good enough to shape test traffic (not for anything secret). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A version-4 UUID drawn from `random`: the same generator state gives the same id. */
export function seededUuid(random: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16));
  hex[12] = '4';
  hex[16] = ((Math.floor(random() * 4) & 0x3) | 0x8).toString(16);
  const text = hex.join('');
  return `${text.slice(0, 8)}-${text.slice(8, 12)}-${text.slice(12, 16)}-${text.slice(16, 20)}-${text.slice(20)}`;
}

function checkOptions(options: WorkloadOptions): void {
  const problems: string[] = [];
  for (const name of ['count', 'sales', 'users'] as const) {
    if (!Number.isInteger(options[name]) || options[name] < (name === 'count' ? 0 : 1)) {
      problems.push(`${name} must be a whole number${name === 'count' ? '' : ' of at least 1'}`);
    }
  }
  for (const name of ['duplicateRate', 'poisonRate'] as const) {
    if (!(options[name] >= 0 && options[name] <= 1)) problems.push(`${name} must be between 0 and 1`);
  }
  if (options.duplicateRate + options.poisonRate > 1)
    problems.push('duplicateRate + poisonRate must be at most 1');
  if (options.saleIds && options.saleIds.length < options.sales)
    problems.push(`saleIds must hold ${options.sales} ids`);
  if (problems.length > 0) throw new RangeError(`invalid workload: ${problems.join('; ')}`);
}

function poisonBody(kind: PoisonKind, saleId: string, index: number, oversizeBytes: number): Buffer {
  const userId = `poison-${index}`;
  const timestamp = '2026-11-22T10:00:00.000Z';
  switch (kind) {
    case 'not-json':
      return Buffer.from(`{"saleId":"${saleId}","userId":"${userId}",`);
    case 'missing-field':
      return Buffer.from(JSON.stringify({ saleId, timestamp }));
    case 'bad-uuid':
      return Buffer.from(JSON.stringify({ saleId: `sale-${index}`, userId, timestamp }));
    case 'bad-timestamp':
      return Buffer.from(JSON.stringify({ saleId, userId, timestamp: 'yesterday at noon' }));
    case 'over-size': {
      const body = Buffer.from(JSON.stringify({ saleId, userId, timestamp, note: '' }));
      const padding = Math.max(0, oversizeBytes - body.length);
      return Buffer.from(JSON.stringify({ saleId, userId, timestamp, note: 'x'.repeat(padding) }));
    }
  }
}

/** Picks an unused (sale, user) pair at random, or undefined when every pair is taken. */
function freshPair(
  random: () => number,
  used: Set<string>,
  saleIds: readonly string[],
  users: number,
): { saleId: string; userId: string } | undefined {
  const total = saleIds.length * users;
  if (used.size >= total) return undefined;
  let slot = Math.floor(random() * total);
  for (let tries = 0; tries < 20 && used.has(String(slot)); tries += 1) slot = Math.floor(random() * total);
  while (used.has(String(slot))) slot = (slot + 1) % total;
  used.add(String(slot));
  return {
    saleId: saleIds[slot % saleIds.length] as string,
    userId: `user-${Math.floor(slot / saleIds.length) + 1}`,
  };
}

export function generateWorkload(options: WorkloadOptions): Workload {
  checkOptions(options);
  const random = seededRandom(options.seed ?? 1);
  const saleIds = options.saleIds
    ? options.saleIds.slice(0, options.sales)
    : Array.from({ length: options.sales }, () => seededUuid(random));
  const oversizeBytes = options.oversizeBytes ?? 20 * 1024;
  const used = new Set<string>();
  const pairs: { saleId: string; userId: string }[] = [];
  const entries: WorkloadEntry[] = [];
  const poisonByKind = Object.fromEntries(POISON_KINDS.map((kind) => [kind, 0])) as Record<
    PoisonKind,
    number
  >;
  for (let index = 0; index < options.count; index += 1) {
    const draw = random();
    if (draw < options.poisonRate) {
      const poison = POISON_KINDS[Math.floor(random() * POISON_KINDS.length)] as PoisonKind;
      const saleId = saleIds[Math.floor(random() * saleIds.length)] as string;
      poisonByKind[poison] += 1;
      entries.push({ kind: 'poison', poison, body: poisonBody(poison, saleId, index, oversizeBytes) });
      continue;
    }
    const fresh =
      draw < options.poisonRate + options.duplicateRate && pairs.length > 0
        ? undefined
        : freshPair(random, used, saleIds, options.users);
    const pair = fresh ?? pairs[Math.floor(random() * pairs.length)];
    if (!pair) throw new RangeError('invalid workload: no (sale, user) pair left to purchase');
    if (fresh) pairs.push(fresh);
    entries.push({ kind: 'purchase', ...pair, resend: !fresh });
  }
  const poison = entries.length - entries.filter((entry) => entry.kind === 'purchase').length;
  const validMessages = entries.length - poison;
  return {
    entries,
    saleIds,
    expected: {
      messages: entries.length,
      validMessages,
      uniqueValidPairs: pairs.length,
      duplicates: validMessages - pairs.length,
      poison,
      poisonByKind,
    },
  };
}

/** The body of one entry; a purchase is stamped with `publishedAt`, so publish→commit latency can be measured. */
export function encodeEntry(entry: WorkloadEntry, publishedAt: Date): Buffer {
  if (entry.kind === 'poison') return entry.body;
  return Buffer.from(
    JSON.stringify({ saleId: entry.saleId, userId: entry.userId, timestamp: publishedAt.toISOString() }),
  );
}

/** Every body of the workload, purchases stamped with one fixed time (for inspection and tests). */
export function workloadBodies(
  workload: Workload,
  publishedAt = new Date('2026-11-22T10:00:00.000Z'),
): Buffer[] {
  return workload.entries.map((entry) => encodeEntry(entry, publishedAt));
}
