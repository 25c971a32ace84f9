/**
 * A flash-sale burst as HTTP requests to the example API (`POST /sales/:saleId/purchases` with `{ userId }`):
 * the workload's purchases as they are (a duplicate is the same user buying again), its poison as requests
 * the API must refuse before anything reaches the broker.
 */
import type { Workload } from '../workload.js';

export const HTTP_POISON_KINDS = [
  'bad-sale-id',
  'missing-user-id',
  'empty-user-id',
  'user-id-not-a-string',
  'long-user-id',
  'nul-in-user-id',
  'lone-surrogate-in-user-id',
  'not-json',
  'not-an-object',
  'over-size',
] as const;
export type HttpPoisonKind = (typeof HTTP_POISON_KINDS)[number];

export type HttpRequest =
  | { kind: 'purchase'; saleId: string; userId: string; resend: boolean; path: string; body: string }
  | { kind: 'poison'; poison: HttpPoisonKind; expectedStatus: 400 | 413; path: string; body: string };

export interface HttpRequestOptions {
  /** Ask the API to wait for the order's outcome (`?wait=true`). */
  waitForOrder?: boolean;
  /** Size of an over-size body, in bytes; default 20 KiB (the example API refuses over 16 KiB). */
  oversizeBytes?: number;
}

const USER_ID_MAX_CHARACTERS = 255;

export function purchasePath(saleId: string, { waitForOrder = false }: HttpRequestOptions = {}): string {
  return `/sales/${encodeURIComponent(saleId)}/purchases${waitForOrder ? '?wait=true' : ''}`;
}

/** The workload's entries as requests; the n-th poison entry gets the n-th poison kind, round robin. */
export function httpRequests(workload: Workload, options: HttpRequestOptions = {}): HttpRequest[] {
  let poisonSeen = 0;
  return workload.entries.map((entry, index) => {
    if (entry.kind === 'purchase') {
      return {
        ...entry,
        path: purchasePath(entry.saleId, options),
        body: JSON.stringify({ userId: entry.userId }),
      };
    }
    const poison = HTTP_POISON_KINDS[poisonSeen++ % HTTP_POISON_KINDS.length] as HttpPoisonKind;
    const saleId = workload.saleIds[index % workload.saleIds.length] as string;
    return poisonRequest(poison, saleId, index, options);
  });
}

function poisonRequest(
  poison: HttpPoisonKind,
  saleId: string,
  index: number,
  options: HttpRequestOptions,
): HttpRequest {
  const userId = `poison-${index}`;
  const request = (body: string, path = purchasePath(saleId, options), expectedStatus: 400 | 413 = 400) => ({
    kind: 'poison' as const,
    poison,
    expectedStatus,
    path,
    body,
  });
  switch (poison) {
    case 'bad-sale-id':
      return request(JSON.stringify({ userId }), purchasePath(`sale-${index}`, options));
    case 'missing-user-id':
      return request(JSON.stringify({ user: userId }));
    case 'empty-user-id':
      return request(JSON.stringify({ userId: '' }));
    case 'user-id-not-a-string':
      return request(JSON.stringify({ userId: index }));
    case 'long-user-id':
      return request(JSON.stringify({ userId: 'x'.repeat(USER_ID_MAX_CHARACTERS + 1) }));
    case 'nul-in-user-id':
      return request(JSON.stringify({ userId: `${userId}\u0000` }));
    case 'lone-surrogate-in-user-id':
      // JSON.stringify writes a lone surrogate as the escape \ud800: valid JSON, not valid Unicode.
      return request(JSON.stringify({ userId: `${userId}\ud800` }));
    case 'not-json':
      return request(`{"userId":"${userId}",`);
    case 'not-an-object':
      return request(JSON.stringify([{ userId }]));
    case 'over-size': {
      const padding = 'x'.repeat(options.oversizeBytes ?? 20 * 1024);
      return request(JSON.stringify({ userId, note: padding }), undefined, 413);
    }
  }
}
