/** The audit trail against the real database: what PostgreSQL refuses, and how one refused row is isolated. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { Registry } from 'prom-client';
import type { AuditEvent } from '../src/audit/audit-event.js';
import { AuditTrail } from '../src/audit/audit-trail.js';
import { AuditWriter } from '../src/audit/audit.writer.js';
import { parseSettings } from '../src/config/settings.js';
import { PrismaService } from '../src/database/prisma.service.js';
import { WorkerMetrics } from '../src/observability/worker-metrics.js';
import { createTestDatabase, type TestDatabase } from './support/harness.js';

describe('the audit trail on PostgreSQL', () => {
  let db: TestDatabase;
  let prisma: PrismaService;
  let sql: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase('audit_writer');
    prisma = new PrismaService(parseSettings({ DATABASE_URL: db.url, WORKER_ID: 'audit-writer-test' }));
    sql = new pg.Pool({ connectionString: db.url, max: 1 });
  });
  afterAll(async () => {
    await prisma.$disconnect();
    await sql.end();
    await db.drop();
  });

  const event = (userId: string, overrides: Partial<AuditEvent> = {}): AuditEvent => ({
    event: 'MESSAGE_REJECTED',
    saleId: null,
    userId,
    details: { reason: 'x' },
    createdAt: new Date(),
    ...overrides,
  });

  const rowsOf = async (userIdPrefix: string) =>
    (
      await sql.query<{ user_id: string; sale_id: string | null; details: Record<string, unknown> }>(
        'SELECT user_id, sale_id::text, details FROM audit_logs WHERE user_id LIKE $1 ORDER BY id',
        [`${userIdPrefix}%`],
      )
    ).rows;

  it('stores NUL and lone surrogates replaced by U+FFFD, and quoted escape text as it is', async () => {
    await new AuditWriter(prisma).write([
      event('nul-\u0000', { details: { reason: 'a\u0000b', ['k\u0000']: 'v\uD800' } }),
      event('quoted', { details: { reason: 'the text \\u0000 stays' } }),
    ]);
    expect(await rowsOf('nul-')).toEqual([
      { user_id: 'nul-\uFFFD', sale_id: null, details: { reason: 'a\uFFFDb', 'k\uFFFD': 'v\uFFFD' } },
    ]);
    expect((await rowsOf('quoted'))[0]?.details).toEqual({ reason: 'the text \\u0000 stays' });
  });

  it('writes each event with its own time, whether the events share one Date or not', async () => {
    const first = new Date('2026-11-27T10:00:00.001Z');
    const second = new Date('2026-11-27T10:00:05.002Z');
    const times = [first, first, second, first, new Date(second.getTime())];
    await new AuditWriter(prisma).write(
      times.map((createdAt, index) => event(`times-${index}`, { createdAt })),
    );
    const rows = await sql.query<{ created_at: Date }>(
      "SELECT created_at FROM audit_logs WHERE user_id LIKE 'times-%' ORDER BY user_id",
    );
    expect(rows.rows.map((row) => row.created_at.toISOString())).toEqual(
      times.map((time) => time.toISOString()),
    );
  });

  it('isolates the one event the database refuses and writes it reduced, the rest as they were', async () => {
    const registry = new Registry();
    const trail = new AuditTrail(
      new AuditWriter(prisma),
      { batchSize: 100, flushIntervalMs: 50, maxBufferedEvents: 1000, retryMaxMs: 1000 },
      new WorkerMetrics(registry),
    );
    const events = Array.from({ length: 10 }, (_, index) =>
      // Not a UUID: sale_id refuses it (22P02), and with it the whole multi-row INSERT.
      event(`bisect-${index}`, index === 6 ? { saleId: 'not-a-uuid' } : {}),
    );
    trail.recordAll(events);
    await trail.close(Date.now() + 5000);

    const rows = await rowsOf('bisect-');
    expect(rows.map((row) => row.user_id)).toEqual(events.map((item) => item.userId));
    const reduced = rows.find((row) => row.user_id === 'bisect-6');
    expect(reduced?.sale_id).toBeNull();
    expect(reduced?.details).toEqual({
      reason: 'unstorable details',
      refusedWith: '22P02',
      saleIdHex: [...'not-a-uuid'].map((c) => c.charCodeAt(0).toString(16).padStart(4, '0')).join(''),
      userIdHex: [...'bisect-6'].map((c) => c.charCodeAt(0).toString(16).padStart(4, '0')).join(''),
    });
    expect(rows.filter((row) => row.details.reason === 'x')).toHaveLength(9);
    const unstorable = await registry.getSingleMetric('flashsale_audit_events_unstorable_total')?.get();
    expect(unstorable?.values[0]?.value).toBe(1);
  });
});
