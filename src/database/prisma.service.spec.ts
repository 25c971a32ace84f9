import { describe, expect, it } from '@jest/globals';
import { statementName } from './prisma.service.js';

describe('statementName', () => {
  it('names the same SQL text the same, and different texts differently, within 63 bytes', () => {
    const insert = 'INSERT INTO orders (sale_id) SELECT s FROM json_to_recordset($1::json) AS i(s uuid)';
    expect(statementName(insert)).toBe(statementName(`${insert}`));
    expect(statementName(insert)).not.toBe(statementName('SELECT 1'));
    expect(statementName(insert)).toMatch(/^fsw_[0-9a-f]{24}$/);
  });
});
