import type { DeadLetterListing } from './dead-letter.admin.js';
import { oneLine } from './dead-letter.inspection.js';

/** Reasons shown in the text listing; `--json` gives them all. */
const MAX_REASON_ROWS = 20;
const REASON_CHARACTERS = 100;

function table(header: string[], rows: string[][], rightAligned: ReadonlySet<number>): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return rightAligned.has(column) ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** The listing as an operator reads it: counts per reason, then the sample messages. */
export function formatListing(listing: DeadLetterListing): string {
  const { queue, messageCount, inspected, reasons, samples } = listing;
  if (inspected === 0) return `${queue} is empty\n`;
  const scope =
    inspected < messageCount ? ` (counted the first ${inspected}; raise --max to count more)` : '';
  const shown = reasons.slice(0, MAX_REASON_ROWS);
  const hidden = reasons.slice(MAX_REASON_ROWS);
  const reasonRows = shown.map(({ count, code, reason }) => [
    String(count),
    code ?? '-',
    oneLine(reason, REASON_CHARACTERS),
  ]);
  if (hidden.length > 0) {
    const hiddenCount = hidden.reduce((sum, { count }) => sum + count, 0);
    reasonRows.push([String(hiddenCount), '', `… ${hidden.length} other reasons (--json lists them all)`]);
  }
  const sampleRows = samples.map((sample) => [
    sample.firstSeen ?? '-',
    sample.deliveryCount === undefined ? '-' : String(sample.deliveryCount),
    sample.messageId === undefined ? '-' : oneLine(sample.messageId, 64),
    String(sample.bytes),
    sample.preview,
  ]);
  return [
    `${queue}: ${messageCount} message${messageCount === 1 ? '' : 's'}${scope}\n`,
    table(['count', 'code', 'reason'], reasonRows, new Set([0])),
    `first ${samples.length}:\n`,
    table(['first seen', 'deliveries', 'message id', 'bytes', 'body'], sampleRows, new Set([1, 3])),
  ].join('\n');
}
