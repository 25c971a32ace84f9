import { describe, expect, it } from '@jest/globals';
import { RowsWriteInterrupted, writeIsolatingRefusals } from './refused-rows.js';

const refusal = Object.assign(new Error('invalid byte sequence'), { code: '22021' });
const isRefusal = (error: unknown) => error === refusal;

/** A write that refuses any part holding a row in `refused`, and records the parts it was given. */
function writer(refused: readonly number[], awayAfter = Infinity) {
  const parts: number[][] = [];
  const write = (part: readonly number[]) => {
    parts.push([...part]);
    if (parts.length > awayAfter) return Promise.reject(new Error('connection lost'));
    if (part.some((row) => refused.includes(row))) return Promise.reject(refusal);
    return Promise.resolve(part.map((row) => row * 10));
  };
  return { parts, write };
}

describe('writeIsolatingRefusals', () => {
  it('writes every row in one part when none is refused, one result per row', async () => {
    const { parts, write } = writer([]);
    expect(await writeIsolatingRefusals([1, 2, 3], write, isRefusal)).toEqual([
      { written: 10 },
      { written: 20 },
      { written: 30 },
    ]);
    expect(parts).toEqual([[1, 2, 3]]);
  });

  it('splits a refused part until each refused row stands alone, and writes the others, in order', async () => {
    const { parts, write } = writer([2, 5]);
    const results = await writeIsolatingRefusals([1, 2, 3, 4, 5], write, isRefusal);
    expect(results).toEqual([
      { written: 10 },
      { refused: refusal },
      { written: 30 },
      { written: 40 },
      { refused: refusal },
    ]);
    expect(parts).toEqual([[1, 2, 3, 4, 5], [1, 2, 3], [1, 2], [1], [2], [3], [4, 5], [4], [5]]);
  });

  it('stops at a failure that is no row’s fault, with the results of the rows done before', async () => {
    const { write } = writer([3], 3);
    const interrupted = await writeIsolatingRefusals([1, 2, 3, 4], write, isRefusal).catch(
      (error: unknown) => error,
    );
    expect(interrupted).toBeInstanceOf(RowsWriteInterrupted);
    expect((interrupted as RowsWriteInterrupted<number>).results).toEqual([{ written: 10 }, { written: 20 }]);
    expect((interrupted as Error).cause).toEqual(new Error('connection lost'));
  });

  it('refuses a write that gives fewer results than rows', async () => {
    await expect(writeIsolatingRefusals([1, 2], () => Promise.resolve([1]), isRefusal)).rejects.toThrow(
      'a write of 2 row(s) gave 1 result(s)',
    );
  });

  it('writes nothing for no rows', async () => {
    const { parts, write } = writer([]);
    expect(await writeIsolatingRefusals([], write, isRefusal)).toEqual([]);
    expect(parts).toEqual([]);
  });
});
