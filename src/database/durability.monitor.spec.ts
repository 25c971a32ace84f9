import { describe, expect, it } from '@jest/globals';
import { type Durability, durabilityVerdict } from './durability.monitor.js';

const primaryWithOneStandby: Durability = {
  synchronousCommit: 'on',
  standbyNames: 'ANY 1 (*)',
  synchronousStandbys: 1,
  inRecovery: false,
};

describe('durabilityVerdict', () => {
  it.each<[string, Partial<Durability>, boolean | undefined, RegExp]>([
    ['a synchronous standby confirms each commit', {}, true, /^yes: 1 synchronous standby/],
    ['remote_apply waits for the standby too', { synchronousCommit: 'remote_apply' }, true, /^yes/],
    ['synchronous_commit=local does not wait', { synchronousCommit: 'local' }, false, /^no: .*local/],
    ['synchronous_commit=off does not wait', { synchronousCommit: 'off' }, false, /^no: /],
    [
      'no synchronous standby configured (asynchronous replication or none)',
      { standbyNames: '', synchronousStandbys: 0 },
      false,
      /^no: no synchronous standby is configured.*RDS Multi-AZ/,
    ],
    [
      'a role that may not read pg_stat_replication',
      { synchronousStandbys: undefined },
      undefined,
      /^unknown: .*pg_monitor/,
    ],
    [
      'a configured standby that is not streaming now',
      { synchronousStandbys: 0 },
      undefined,
      /commits wait until one is back/,
    ],
    ['a standby in recovery', { inRecovery: true }, undefined, /^unknown: the database is a standby/],
  ])('%s', (_name, overrides, survives, words) => {
    const verdict = durabilityVerdict({ ...primaryWithOneStandby, ...overrides });
    expect(verdict.survivesFailover).toBe(survives);
    expect(verdict.words).toMatch(words);
  });
});
