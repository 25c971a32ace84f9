import { purchaseSchema } from '@flashsale/contract';

/** A purchase as the API publishes it: the sale from the path, the user from the body, stamped by the API. */
export interface PurchaseToPublish {
  saleId: string;
  userId: string;
  timestamp: Date;
}

export type PurchaseRequest = { ok: true; purchase: PurchaseToPublish } | { ok: false; problems: string[] };

/**
 * `POST /sales/:saleId/purchases` with `{ userId }`, read through the message contract's own schema: what the
 * API accepts is exactly what the worker would persist, and the reasons are the ones the worker would give.
 */
export function readPurchaseRequest(saleId: string, body: unknown, now: Date): PurchaseRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, problems: ['body must be a JSON object such as {"userId":"user-42"}'] };
  }
  const userId: unknown = Object.hasOwn(body, 'userId') ? (body as { userId: unknown }).userId : undefined;
  const parsed = purchaseSchema.safeParse({ saleId, userId, timestamp: now.toISOString() });
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`),
    };
  }
  return { ok: true, purchase: parsed.data };
}

/** `?wait=true` asks to wait for the order's outcome; absent or `false` does not; anything else is refused. */
export function readWaitFlag(value: unknown): boolean | undefined {
  if (value === undefined || value === 'false') return false;
  if (value === 'true' || value === '') return true;
  return undefined;
}
