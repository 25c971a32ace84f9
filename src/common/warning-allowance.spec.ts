import { describe, expect, it } from '@jest/globals';
import { WarningAllowance } from './warning-allowance.js';

describe('WarningAllowance', () => {
  it('lets the limit through per interval, counts the rest, and starts again', () => {
    const allowance = new WarningAllowance(2);
    expect([allowance.take(), allowance.take(), allowance.take(), allowance.take()]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(allowance.restart()).toBe(2);
    expect(allowance.take()).toBe(true);
    expect(allowance.restart()).toBe(0);
  });

  it('has no limit at 0', () => {
    const allowance = new WarningAllowance(0);
    for (let line = 0; line < 1000; line++) expect(allowance.take()).toBe(true);
    expect(allowance.restart()).toBe(0);
  });
});
