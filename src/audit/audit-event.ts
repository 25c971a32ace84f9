/** One row of `audit_logs`, as buffered in memory until its batch is written. */
export interface AuditEvent {
  event: AuditEventName;
  saleId: string | null;
  userId: string | null;
  details: Record<string, unknown>;
  createdAt: Date;
}

export type AuditEventName = 'ORDER_CONFIRMED' | 'ORDER_DUPLICATE' | 'MESSAGE_REJECTED';

/** Writes a batch of audit events in one statement; throws when nothing was written. */
export interface AuditSink {
  write(events: readonly AuditEvent[]): Promise<void>;
}
