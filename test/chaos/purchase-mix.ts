/**
 * The burst the chaos suite publishes: unique purchases, about 10% duplicates of them and about 1% poison of
 * every kind, shuffled, with everything the assertions need to know about it. Unlike the load-test workload,
 * the shares are exact and every poison body is unique, so the DLQ can be compared with them one for one.
 */
import {
  encodeEntry,
  type PoisonKind as WorkloadPoisonKind,
  seededRandom,
  seededUuid,
} from '../../scripts/workload.js';

/** The workload's poison kinds whose bodies stay small; over-size bodies are the load test's business. */
export const POISON_KINDS = [
  'not-json',
  'missing-field',
  'bad-uuid',
  'bad-timestamp',
] as const satisfies readonly WorkloadPoisonKind[];
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

interface ValidPurchase {
  saleId: string;
  userId: string;
  timestampMs: number;
}

export const DUPLICATE_SHARE = 0.1;
export const POISON_SHARE = 0.01;
const SALES = 5;
const SALE_START_MS = Date.parse('2026-11-22T10:00:00.000Z');

export const pairKey = (saleId: string, userId: string): string => `${saleId}|${userId}`;

/** The body of a valid purchase, encoded as the load-test workload encodes it. */
function purchaseBody({ saleId, userId, timestampMs }: ValidPurchase, resend: boolean): string {
  return encodeEntry({ kind: 'purchase', saleId, userId, resend }, new Date(timestampMs)).toString('utf8');
}

function poisonBody(kind: PoisonKind, index: number, saleId: string, timestamp: string): string {
  switch (kind) {
    case 'not-json':
      return `purchase #${index} from a client that does not speak JSON`;
    case 'missing-field':
      return JSON.stringify({ saleId, timestamp, poison: index });
    case 'bad-uuid':
      return JSON.stringify({ saleId: `sale-${index}`, userId: `poison-user-${index}`, timestamp });
    case 'bad-timestamp':
      return JSON.stringify({ saleId, userId: `poison-user-${index}`, timestamp: `yesterday #${index}` });
  }
}

function shuffle(items: string[], random: () => number): void {
  for (let index = items.length - 1; index > 0; index -= 1) {
    const other = Math.floor(random() * (index + 1));
    [items[index], items[other]] = [items[other]!, items[index]!];
  }
}

/** Builds a shuffled mix of `total` messages from `seed`: a failing run is replayed with its CHAOS_SEED. */
export function purchaseMix(total: number, seed: number): PurchaseMix {
  const random = seededRandom(seed);
  const saleIds = Array.from({ length: SALES }, () => seededUuid(random));
  const poison = Math.max(POISON_KINDS.length, Math.round(total * POISON_SHARE));
  const duplicates = Math.round(total * DUPLICATE_SHARE);
  const unique = total - poison - duplicates;
  if (unique < 1) throw new Error(`CHAOS_PURCHASES=${total} is too small for the mix`);

  const valid: ValidPurchase[] = Array.from({ length: unique }, (_, user) => ({
    saleId: saleIds[user % SALES]!,
    userId: `user-${user}`,
    timestampMs: SALE_START_MS + Math.floor(random() * 600_000),
  }));
  const timestampsByPair = new Map(
    valid.map((purchase) => [pairKey(purchase.saleId, purchase.userId), new Set([purchase.timestampMs])]),
  );
  const bodies = valid.map((purchase) => purchaseBody(purchase, false));
  for (let index = 0; index < duplicates; index += 1) {
    const original = valid[Math.floor(random() * valid.length)]!;
    // Half are the API's own retries (the same body), half a second click (a later timestamp).
    const timestampMs = index % 2 === 0 ? original.timestampMs : original.timestampMs + 1 + index;
    timestampsByPair.get(pairKey(original.saleId, original.userId))!.add(timestampMs);
    bodies.push(purchaseBody({ ...original, timestampMs }, true));
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
  shuffle(bodies, random);
  return { bodies, timestampsByPair, poisonBodies, poisonByKind, duplicates, saleIds };
}
