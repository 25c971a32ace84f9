/**
 * The burst the chaos suite publishes: unique purchases, about 10% duplicates of them and about 1% poison of
 * every kind, shuffled, with everything the assertions need to know about it.
 */

export const POISON_KINDS = ['not JSON', 'missing field', 'bad UUID', 'bad timestamp'] as const;
export type PoisonKind = (typeof POISON_KINDS)[number];

export interface PurchaseMix {
  /** Message bodies in publishing order. */
  bodies: string[];
  /** Every valid (saleId, userId) pair as `saleId|userId`, with the timestamps (ms) published for it. */
  timestampsByPair: Map<string, Set<number>>;
  /** The poison bodies; each is unique, so the DLQ can be compared with them one for one. */
  poisonBodies: Set<string>;
  poisonByKind: Record<PoisonKind, number>;
  duplicates: number;
  saleIds: string[];
}

export const DUPLICATE_SHARE = 0.1;
export const POISON_SHARE = 0.01;
const SALES = 5;
const SALE_START_MS = Date.parse('2026-11-22T10:00:00.000Z');

/** mulberry32: a seeded generator, so a failing run can be replayed with its CHAOS_SEED. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuidFrom(random: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16));
  hex[12] = '4';
  hex[16] = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  const text = hex.join('');
  return `${text.slice(0, 8)}-${text.slice(8, 12)}-${text.slice(12, 16)}-${text.slice(16, 20)}-${text.slice(20)}`;
}

export const pairKey = (saleId: string, userId: string): string => `${saleId}|${userId}`;

function poisonBody(kind: PoisonKind, index: number, saleId: string, timestamp: string): string {
  switch (kind) {
    case 'not JSON':
      return `purchase #${index} from a client that does not speak JSON`;
    case 'missing field':
      return JSON.stringify({ saleId, timestamp, poison: index });
    case 'bad UUID':
      return JSON.stringify({ saleId: `sale-${index}`, userId: `poison-user-${index}`, timestamp });
    case 'bad timestamp':
      return JSON.stringify({ saleId, userId: `poison-user-${index}`, timestamp: `yesterday #${index}` });
  }
}

/** Builds a shuffled mix of `total` messages from `seed`. */
export function purchaseMix(total: number, seed: number): PurchaseMix {
  const random = seededRandom(seed);
  const saleIds = Array.from({ length: SALES }, () => uuidFrom(random));
  const poison = Math.max(POISON_KINDS.length, Math.round(total * POISON_SHARE));
  const duplicates = Math.round(total * DUPLICATE_SHARE);
  const unique = total - poison - duplicates;
  if (unique < 1) throw new Error(`CHAOS_PURCHASES=${total} is too small for the mix`);

  const timestampsByPair = new Map<string, Set<number>>();
  const bodies: string[] = [];
  const valid: { saleId: string; userId: string; timestampMs: number }[] = [];
  for (let user = 0; user < unique; user += 1) {
    const purchase = {
      saleId: saleIds[user % SALES]!,
      userId: `user-${user}`,
      timestampMs: SALE_START_MS + Math.floor(random() * 600_000),
    };
    valid.push(purchase);
    timestampsByPair.set(pairKey(purchase.saleId, purchase.userId), new Set([purchase.timestampMs]));
  }
  const body = (saleId: string, userId: string, timestampMs: number) =>
    JSON.stringify({ saleId, userId, timestamp: new Date(timestampMs).toISOString() });
  for (const purchase of valid) bodies.push(body(purchase.saleId, purchase.userId, purchase.timestampMs));
  for (let index = 0; index < duplicates; index += 1) {
    const original = valid[Math.floor(random() * valid.length)]!;
    // Half are the API's own retries (the same body), half a second click (a later timestamp).
    const timestampMs = index % 2 === 0 ? original.timestampMs : original.timestampMs + 1 + index;
    timestampsByPair.get(pairKey(original.saleId, original.userId))!.add(timestampMs);
    bodies.push(body(original.saleId, original.userId, timestampMs));
  }
  const poisonBodies = new Set<string>();
  const poisonByKind = Object.fromEntries(POISON_KINDS.map((kind) => [kind, 0])) as Record<
    PoisonKind,
    number
  >;
  for (let index = 0; index < poison; index += 1) {
    const kind = POISON_KINDS[index % POISON_KINDS.length]!;
    poisonByKind[kind] += 1;
    const text = poisonBody(kind, index, saleIds[index % SALES]!, new Date(SALE_START_MS).toISOString());
    poisonBodies.add(text);
    bodies.push(text);
  }
  for (let index = bodies.length - 1; index > 0; index -= 1) {
    const other = Math.floor(random() * (index + 1));
    [bodies[index], bodies[other]] = [bodies[other]!, bodies[index]!];
  }
  return { bodies, timestampsByPair, poisonBodies, poisonByKind, duplicates, saleIds };
}
