import { storableJson, storableText } from '../common/safe-text.js';
import type { PrismaService } from '../database/prisma.service.js';
import type { AuditEvent, AuditSink } from './audit-event.js';

// In JSON.stringify's output, NUL and lone surrogates are the only \u escapes of these kinds (a surrogate pair
// is written as is); an even run of backslashes before one means the escape is real, not quoted text.
const UNSTORABLE_ESCAPE = /(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f])/i;

/**
 * Writes audit events with one set-based INSERT per batch: a single round trip and a single JSON parameter
 * however many rows. PostgreSQL refuses NUL and lone surrogates in text and jsonb, and one such row would fail
 * the whole INSERT: when the batch's JSON holds one, its strings are made storable first (one scan of the
 * text, not a walk of every event, in the usual case). AuditTrail isolates any row refused all the same.
 */
export class AuditWriter implements AuditSink {
  constructor(private readonly prisma: PrismaService) {}

  async write(events: readonly AuditEvent[]): Promise<void> {
    const row = rowWriter();
    let rows = JSON.stringify(events.map(row));
    // Most batches hold no \u escape at all: one plain search of the text spares them the expression.
    if (rows.includes('\\u') && UNSTORABLE_ESCAPE.test(rows)) {
      rows = JSON.stringify(events.map((event) => storableRow(row(event))));
    }
    await this.prisma.$executeRaw`
      INSERT INTO audit_logs (event, sale_id, user_id, details, created_at)
      SELECT e, s, u, d, c
      FROM json_to_recordset(${rows}::json) AS input(e text, s uuid, u text, d jsonb, c timestamptz)`;
  }
}

/** An event as a row of the JSON parameter; `d` is `unknown` once made storable. */
interface AuditRow {
  e: AuditEvent['event'];
  s: string | null;
  u: string | null;
  d: unknown;
  c: string | null;
}

/**
 * The JSON row of each event. The events reported together share one `createdAt` Date: its text is made once
 * per distinct Date, not once per row (a Date's own JSON form costs more than the rest of its row).
 */
function rowWriter(): (event: AuditEvent) => AuditRow {
  let lastDate: Date | undefined;
  let lastText: string | null = null;
  return (event: AuditEvent) => {
    if (event.createdAt !== lastDate) {
      lastDate = event.createdAt;
      lastText = lastDate.toJSON(); // null for an invalid Date, as JSON.stringify would write it
    }
    return { e: event.event, s: event.saleId, u: event.userId, d: event.details, c: lastText };
  };
}

function storableRow(row: AuditRow): AuditRow {
  return { ...row, u: row.u === null ? null : storableText(row.u), d: storableJson(row.d) };
}
