import { Injectable } from '@nestjs/common';
import { storableJson, storableText } from '../common/safe-text.js';
import { PrismaService } from '../database/prisma.service.js';
import type { AuditEvent, AuditSink } from './audit-event.js';

/**
 * Writes audit events with one set-based INSERT per batch: a single round trip and a single JSON parameter
 * however many rows. Strings are
 * made storable first (PostgreSQL refuses NUL and lone surrogates in text and jsonb, and one such row would
 * fail the whole INSERT); AuditTrail isolates any row refused all the same.
 */
@Injectable()
export class AuditWriter implements AuditSink {
  constructor(private readonly prisma: PrismaService) {}

  async write(events: readonly AuditEvent[]): Promise<void> {
    const rows = JSON.stringify(
      events.map((event) => ({
        e: event.event,
        s: event.saleId,
        u: event.userId === null ? null : storableText(event.userId),
        d: storableJson(event.details),
        c: event.createdAt,
      })),
    );
    await this.prisma.$executeRaw`
      INSERT INTO audit_logs (event, sale_id, user_id, details, created_at)
      SELECT e, s, u, d, c
      FROM json_to_recordset(${rows}::json) AS input(e text, s uuid, u text, d jsonb, c timestamptz)`;
  }
}
