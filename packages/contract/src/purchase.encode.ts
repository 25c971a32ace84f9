import { purchaseSchema } from './purchase.schema.js';

/** A purchase as the flash-sale API knows it; `timestamp` is when the purchase was made. */
export interface PurchaseInput {
  saleId: string;
  userId: string;
  timestamp: Date | string;
}

export type EncodedPurchase = { ok: true; body: Buffer } | { ok: false; problems: string[] };

/**
 * The JSON body of a purchase (the three contract fields, a Date written as ISO 8601), or what is wrong with
 * it: a publisher refuses what the worker would reject.
 */
export function encodePurchase(purchase: PurchaseInput): EncodedPurchase {
  const timestamp =
    purchase.timestamp instanceof Date
      ? Number.isNaN(purchase.timestamp.getTime())
        ? 'Invalid Date'
        : purchase.timestamp.toISOString()
      : purchase.timestamp;
  const message = { saleId: purchase.saleId, userId: purchase.userId, timestamp };
  const parsed = purchaseSchema.safeParse(message);
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`),
    };
  }
  return { ok: true, body: Buffer.from(JSON.stringify(message)) };
}
