import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  codeUnitsHex,
  cutToCodePoints,
  storableJson,
  storableText,
  safeLogText,
  safeProperty,
  safeText,
} from './safe-text.js';

const R = '\uFFFD';
const EMOJI = '\u{1F600}'; // two UTF-16 units, one code point

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Would PostgreSQL's jsonb and text take it: no NUL, no lone surrogate. */
function storable(value: string): boolean {
  return !value.includes('\u0000') && !LONE_SURROGATE.test(value);
}

// fast-check's strings are made of whole code points: lone surrogates, NUL and bidi controls are added here.
const hostileText = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'binary', maxLength: 5 }),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)),
      fc.constantFrom('\u0000', '\u202E', '\u001b', '\u{1F600}'),
    ),
    { maxLength: 300 },
  )
  .map((parts) => parts.join(''));

describe('safeText', () => {
  it.each([
    ['a NUL', 'a\u0000b', `a${R}b`],
    ['a lone high surrogate', 'user-\uD800', `user-${R}`],
    ['a lone low surrogate', '\uDC00x', `${R}x`],
    ['a reversed pair', '\uDC00\uD800', `${R}${R}`],
    ['a right-to-left override', 'abc\u202Etxt.exe', `abc${R}txt.exe`],
    ['an isolate', 'a\u2066b\u2069', `a${R}b${R}`],
    ['line breaks and escapes', 'a\r\nb\u001b[31m', `a${R}${R}b${R}[31m`],
    ['a C1 control', 'a\u0085b', `a${R}b`],
  ])('replaces %s, keeping the rest', (_, input, expected) => {
    expect(safeText(input)).toBe(expected);
  });

  it('keeps well-formed text, surrogate pairs included', () => {
    expect(safeText(`user ${EMOJI} 42 – ü`)).toBe(`user ${EMOJI} 42 – ü`);
  });

  it('cuts 300 emoji to 255 code points without splitting a pair', () => {
    const cut = safeText(EMOJI.repeat(300), 255);
    expect([...cut]).toHaveLength(255);
    expect(cut.endsWith('…')).toBe(true);
    expect(storable(cut)).toBe(true);
  });

  it('keeps a text of exactly the limit whole, even when its UTF-16 length is over it', () => {
    expect(safeText(EMOJI.repeat(255), 255)).toBe(EMOJI.repeat(255));
  });

  it('always returns storable text within the limit, whatever the input', () => {
    fc.assert(
      fc.property(hostileText, fc.integer({ min: 1, max: 300 }), (input, max) => {
        const safe = safeText(input, max);
        expect(storable(safe)).toBe(true);
        expect([...safe].length).toBeLessThanOrEqual(max);
      }),
    );
  });
});

describe('cutToCodePoints', () => {
  it('leaves a short text alone and cuts a long one at the limit', () => {
    expect(cutToCodePoints('abc', 3)).toBe('abc');
    expect(cutToCodePoints('abcd', 3)).toBe('ab…');
    expect(cutToCodePoints(`a${EMOJI}${EMOJI}b`, 3)).toBe(`a${EMOJI}…`);
  });
});

describe('safeLogText', () => {
  it('keeps line breaks and tabs but replaces NUL, escapes and lone surrogates', () => {
    expect(safeLogText('at x\n\tat y\u0000\u001b\uD800')).toBe(`at x\n\tat y${R}${R}${R}`);
  });
});

describe('safeProperty', () => {
  it('reads strings, buffers and numbers, and leaves absent values absent', () => {
    expect(safeProperty(undefined)).toBeUndefined();
    expect(safeProperty('id\u0000')).toBe(`id${R}`);
    expect(safeProperty(Buffer.from([0x61, 0x00, 0xff]))).toBe(`a${R}${R}`);
    expect(safeProperty(42)).toBe('42');
    expect(safeProperty('x'.repeat(1_000_000))).toHaveLength(255);
    // A header table may hold what JSON cannot write (a 64-bit integer, a cycle): shown, never thrown.
    const cyclic: Record<string, unknown> = { big: 2n ** 64n };
    cyclic.self = cyclic;
    expect(safeProperty(cyclic)).toContain('18446744073709551616');
  });
});

describe('storableText', () => {
  it('replaces only what PostgreSQL refuses', () => {
    expect(storableText('a\u0000b\uD800\nc\u202E')).toBe(`a${R}b${R}\nc\u202E`);
  });
});

describe('storableJson', () => {
  it('makes every key and string value storable, keeping numbers and structure', () => {
    expect(storableJson({ 'k\u0000': ['v\uD800', 3, null, { deep: 'ok' }] })).toEqual({
      [`k${R}`]: [`v${R}`, 3, null, { deep: 'ok' }],
    });
  });
});

describe('codeUnitsHex', () => {
  it('records every UTF-16 unit, lone surrogates and NUL included', () => {
    expect(codeUnitsHex('a\u0000\uD800')).toBe('00610000d800');
  });
});
