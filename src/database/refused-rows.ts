/**
 * What became of one row of a multi-row write: written (with what the write said of it), or refused by the
 * database on its own (bad data: it fails every time, whatever rows it is written with).
 */
export type RowResult<R> = { written: R } | { refused: unknown };

/** A failure that is no row's fault stopped the write: `results` holds the rows done before, in order. */
export class RowsWriteInterrupted<R> extends Error {
  override readonly name = 'RowsWriteInterrupted';
  constructor(
    readonly results: readonly RowResult<R>[],
    options: { cause: unknown },
  ) {
    super(`write interrupted after ${results.length} row(s): ${(options.cause as Error).message}`, options);
  }
}

/**
 * Writes `rows` with `write` (one multi-row statement, one result per row) and isolates the rows the database
 * refuses: one refused row fails the whole statement, so a refused part is split in two and each half written
 * on its own, until the refused row stands alone; every other row is written. Parts are written in order, so
 * the rows done are always a prefix. A failure `isRefusal` does not recognise is thrown as RowsWriteInterrupted
 * with the results so far: the caller keeps the rest for later.
 */
export async function writeIsolatingRefusals<Row, R>(
  rows: readonly Row[],
  write: (part: readonly Row[]) => Promise<readonly R[]>,
  isRefusal: (error: unknown) => boolean,
): Promise<RowResult<R>[]> {
  const results: RowResult<R>[] = [];
  const parts: (readonly Row[])[] = rows.length > 0 ? [rows] : [];
  for (let part = parts.shift(); part; part = parts.shift()) {
    let written: readonly R[];
    try {
      written = await write(part);
    } catch (error) {
      if (!isRefusal(error)) throw new RowsWriteInterrupted(results, { cause: error });
      if (part.length === 1) {
        results.push({ refused: error });
      } else {
        const middle = Math.ceil(part.length / 2);
        parts.unshift(part.slice(0, middle), part.slice(middle));
      }
      continue;
    }
    if (written.length !== part.length) {
      throw new Error(`a write of ${part.length} row(s) gave ${written.length} result(s)`);
    }
    for (const result of written) results.push({ written: result });
  }
  return results;
}
