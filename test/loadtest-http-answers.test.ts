import { describe, expect, it } from '@jest/globals';
import { type HttpDriveResult, NOT_SENT, SENT_UNANSWERED } from '../scripts/loadtest/http-driver.js';
import { compareWithOrders, pairKey, readAnswers } from '../scripts/loadtest/http-load-test.js';
import { HTTP_POISON_KINDS, type HttpRequest, httpRequests } from '../scripts/loadtest/http-requests.js';
import { generateWorkload } from '../scripts/workload.js';

/** How the HTTP load test reads the API's answers and holds them against the orders (no servers needed). */
const SALE = 'a1b2c3d4-0000-4000-8000-000000000001';
const purchase = (userId: string, resend = false): HttpRequest => ({
  kind: 'purchase',
  saleId: SALE,
  userId,
  resend,
  path: `/sales/${SALE}/purchases`,
  body: JSON.stringify({ userId }),
});
const poison: HttpRequest = {
  kind: 'poison',
  poison: 'empty-user-id',
  expectedStatus: 400,
  path: `/sales/${SALE}/purchases`,
  body: '{"userId":""}',
};

function drive(statuses: number[]): HttpDriveResult {
  const at = new Date();
  return {
    statuses: Int16Array.from(statuses),
    sent: statuses.filter((status) => status !== NOT_SENT).length,
    answered: statuses.filter((status) => status > 0).length,
    statusCounts: {},
    latencyMs: { p50: 0, p90: 0, p99: 0, max: 0 },
    errors: 0,
    timeouts: 0,
    startedAt: at,
    finishedAt: at,
  };
}

describe('readAnswers and compareWithOrders', () => {
  const requests = [
    purchase('accepted'),
    purchase('accepted', true),
    purchase('refused-400'),
    purchase('unavailable-503'),
    purchase('unanswered'),
    purchase('not-sent'),
    poison,
    poison,
  ];
  const answers = readAnswers(requests, drive([202, 202, 400, 503, SENT_UNANSWERED, NOT_SENT, 400, 202]));

  it('counts what each answer says: accepted, refused, in doubt, unanswered, poison refused or not', () => {
    expect(answers.acceptedRequests).toBe(2);
    expect([...answers.accepted]).toEqual([pairKey(SALE, 'accepted')]);
    expect(answers.notAccepted).toEqual({ '400': 1, '503': 1 });
    expect(answers.unansweredPurchases).toBe(1);
    expect(answers.purchasesSent).toBe(5);
    expect([...answers.inDoubt].sort()).toEqual([
      pairKey(SALE, 'unanswered'),
      pairKey(SALE, 'unavailable-503'),
    ]);
    expect(answers.poison).toEqual({ sent: 2, refusedAsExpected: 1, otherwise: { '202': 1 }, unanswered: 0 });
  });

  it('finds an accepted purchase without an order missing', () => {
    expect(compareWithOrders(answers, new Set())).toEqual({
      missing: [pairKey(SALE, 'accepted')],
      unexpected: [],
    });
  });

  it('allows an order for a purchase in doubt, not for one refused, never sent or never asked for', () => {
    const orders = new Set(
      ['accepted', 'unavailable-503', 'unanswered', 'refused-400', 'not-sent', 'stranger'].map((user) =>
        pairKey(SALE, user),
      ),
    );
    expect(compareWithOrders(answers, orders)).toEqual({
      missing: [],
      unexpected: ['refused-400', 'not-sent', 'stranger'].map((user) => pairKey(SALE, user)),
    });
  });
});

describe('httpRequests', () => {
  const workload = generateWorkload({
    count: 2000,
    sales: 2,
    users: 1000,
    duplicateRate: 0.1,
    poisonRate: 0.05,
    seed: 5,
  });
  const requests = httpRequests(workload);

  it("keeps the workload's purchases and duplicates, and gives its poison every kind in turn", () => {
    expect(requests.filter((request) => request.kind === 'purchase')).toHaveLength(
      workload.expected.validMessages,
    );
    const kinds = requests.flatMap((request) => (request.kind === 'poison' ? [request.poison] : []));
    expect(kinds).toHaveLength(workload.expected.poison);
    expect(new Set(kinds)).toEqual(new Set(HTTP_POISON_KINDS));
    const resent = requests.filter((request) => request.kind === 'purchase' && request.resend);
    expect(resent).toHaveLength(workload.expected.duplicates);
  });

  it('sends over-size poison as a body over 16 KiB, expected 413, and every other poison expected 400', () => {
    for (const request of requests) {
      if (request.kind !== 'poison') continue;
      expect([request.poison, request.expectedStatus]).toEqual([
        request.poison,
        request.poison === 'over-size' ? 413 : 400,
      ]);
      if (request.poison === 'over-size') expect(Buffer.byteLength(request.body)).toBeGreaterThan(16 * 1024);
    }
  });

  it('asks the API to wait for the order with waitForOrder', () => {
    const waiting = httpRequests(workload, { waitForOrder: true });
    expect(waiting.every((request) => request.path.endsWith('/purchases?wait=true'))).toBe(true);
  });
});
