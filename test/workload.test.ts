import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { orderKey } from './support/order-key.js';
import { decodePurchase } from '@flashsale/contract';
import { generateWorkload, POISON_KINDS, workloadBodies, type WorkloadOptions } from '../scripts/workload.js';

const MAX_MESSAGE_BYTES = 16 * 1024;
const burst: WorkloadOptions = {
  count: 10_000,
  sales: 3,
  users: 5000,
  duplicateRate: 0.1,
  poisonRate: 0.01,
  seed: 7,
};

const digestOf = (bodies: Buffer[]) =>
  bodies.reduce((hash, body) => hash.update(body).update('\n'), createHash('sha256')).digest('hex');

function outcomeOf(bodies: Buffer[]) {
  const keys = new Set<string>();
  let valid = 0;
  let poison = 0;
  for (const body of bodies) {
    const parsed = decodePurchase(body, { maxBytes: MAX_MESSAGE_BYTES });
    if (!parsed.ok) {
      poison += 1;
      continue;
    }
    valid += 1;
    keys.add(orderKey(parsed.purchase));
  }
  return { valid, poison, unique: keys.size };
}

describe('generateWorkload', () => {
  it('gives the same bodies for the same seed and options', () => {
    expect(digestOf(workloadBodies(generateWorkload(burst)))).toBe(
      digestOf(workloadBodies(generateWorkload(burst))),
    );
  });

  it('gives other bodies for another seed', () => {
    const first = digestOf(workloadBodies(generateWorkload(burst)));
    expect(digestOf(workloadBodies(generateWorkload({ ...burst, seed: 8 })))).not.toBe(first);
  });

  it('states the figures the worker must produce, as the contract reads the bodies', () => {
    const workload = generateWorkload(burst);
    const outcome = outcomeOf(workloadBodies(workload));
    expect(workload.expected.messages).toBe(10_000);
    expect(workload.expected.poison).toBe(outcome.poison);
    expect(workload.expected.validMessages).toBe(outcome.valid);
    expect(workload.expected.uniqueValidPairs).toBe(outcome.unique);
    expect(workload.expected.duplicates).toBe(outcome.valid - outcome.unique);
  });

  it('keeps duplicate and poison shares near the rates asked for', () => {
    const { expected } = generateWorkload(burst);
    expect(expected.duplicates / expected.messages).toBeGreaterThan(0.09);
    expect(expected.duplicates / expected.messages).toBeLessThan(0.11);
    expect(expected.poison / expected.messages).toBeGreaterThan(0.007);
    expect(expected.poison / expected.messages).toBeLessThan(0.013);
  });

  it('mixes every kind of poison, and each is refused by the contract', () => {
    const workload = generateWorkload({ ...burst, poisonRate: 0.2 });
    for (const kind of POISON_KINDS) expect(workload.expected.poisonByKind[kind]).toBeGreaterThan(0);
    const poisonBodies = workload.entries.flatMap((entry) => (entry.kind === 'poison' ? [entry.body] : []));
    const accepted = poisonBodies.filter((body) => decodePurchase(body, { maxBytes: MAX_MESSAGE_BYTES }).ok);
    expect(accepted).toEqual([]);
  });

  it('uses only the sale ids it is given', () => {
    const saleIds = ['a1b2c3d4-0000-4000-8000-000000000001', 'a1b2c3d4-0000-4000-8000-000000000002'];
    const workload = generateWorkload({ ...burst, count: 500, sales: 2, saleIds });
    const used = new Set(
      workload.entries.flatMap((entry) => (entry.kind === 'purchase' ? [entry.saleId] : [])),
    );
    expect([...used].sort()).toEqual(saleIds);
  });

  it('re-sends earlier pairs once every (sale, user) pair is taken', () => {
    const { expected } = generateWorkload({
      count: 50,
      sales: 2,
      users: 10,
      duplicateRate: 0,
      poisonRate: 0,
    });
    expect(expected.uniqueValidPairs).toBe(20);
    expect(expected.duplicates).toBe(30);
  });

  it.each([
    ['a negative count', { count: -1 }],
    ['rates over 1 together', { duplicateRate: 0.6, poisonRate: 0.6 }],
    ['too few sale ids', { saleIds: ['a1b2c3d4-0000-4000-8000-000000000001'] }],
  ])('refuses %s', (_case, override) => {
    expect(() => generateWorkload({ ...burst, ...override })).toThrow(RangeError);
  });
});
