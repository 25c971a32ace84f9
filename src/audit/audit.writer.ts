import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service.js';
import type { AuditEvent, AuditSink } from './audit-event.js';

/** Writes audit events with one set-based INSERT per batch: a single round trip however many rows. */
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
      userIds.push(event.userId);
      details.push(JSON.stringify(event.details));
      createdAt.push(event.createdAt);
    }
    await this.prisma.$executeRaw`
      INSERT INTO audit_logs (event, sale_id, user_id, details, created_at)
      SELECT * FROM unnest(${names}::text[], ${saleIds}::uuid[], ${userIds}::text[], ${details}::jsonb[],
                           ${createdAt}::timestamptz[])`;
  }
}
