import { Injectable } from '@nestjs/common';
import { storableJson, storableText } from '../common/safe-text.js';
import { PrismaService } from '../database/prisma.service.js';
import type { AuditEvent, AuditSink } from './audit-event.js';

/**
 * Writes audit events with one set-based INSERT per batch: a single round trip however many rows. Strings are
 * made storable first (PostgreSQL refuses NUL and lone surrogates in text and jsonb, and one such row would
 * fail the whole INSERT); AuditTrail isolates any row refused all the same.
 */
@Injectable()
export class AuditWriter implements AuditSink {
  constructor(private readonly prisma: PrismaService) {}

  async write(events: readonly AuditEvent[]): Promise<void> {
    const names: string[] = [];
    const saleIds: (string | null)[] = [];
    const userIds: (string | null)[] = [];
    const details: string[] = [];
    const createdAt: Date[] = [];
    for (const event of events) {
      names.push(event.event);
      saleIds.push(event.saleId);
      userIds.push(event.userId === null ? null : storableText(event.userId));
      details.push(JSON.stringify(storableJson(event.details)));
      createdAt.push(event.createdAt);
    }
    await this.prisma.$executeRaw`
      INSERT INTO audit_logs (event, sale_id, user_id, details, created_at)
      SELECT * FROM unnest(${names}::text[], ${saleIds}::uuid[], ${userIds}::text[], ${details}::jsonb[],
                           ${createdAt}::timestamptz[])`;
  }
}
