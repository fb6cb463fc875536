import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RingkvError } from '../../../src/errors.js';
import {
  decodeClock,
  decodeContext,
  emptyClock,
  encodeClock,
  encodeContext,
  MAX_CONTEXT_COUNTER,
  MAX_CONTEXT_ENTRIES,
  MAX_CONTEXT_LENGTH,
} from '../../../src/version/index.js';
import type { VersionVector } from '../../../src/version/index.js';
import { clockArb } from './sim.js';

const RUNS = { numRuns: 1000 };

/** Clocks a context may carry: counters bounded by MAX_CONTEXT_COUNTER. */
const contextClockArb = clockArb.map(
  (c): VersionVector => Object.fromEntries(Object.entries(c).map(([a, n]) => [a, Math.min(n, MAX_CONTEXT_COUNTER)])),
);
const b64 = (bytes: number[] | Uint8Array): string => Buffer.from(bytes).toString('base64url');
const utf8 = (s: string): number[] => [...new TextEncoder().encode(s)];
/** A binary clock built by hand: [format, count, (len, actor, counter)...]. */
const raw = (entries: [string, number[]][], count = entries.length, format = 1): string =>
  b64([format, count, ...entries.flatMap(([a, c]) => [utf8(a).length, ...utf8(a), ...c])]);

function rejects(s: string, message?: RegExp): void {
  let caught: unknown;
  try {
    decodeContext(s);
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${JSON.stringify(String(s).slice(0, 60))} to be rejected`).toBeInstanceOf(RingkvError);
  const e = caught as RingkvError;
  expect(e.code).toBe('BAD_CONTEXT');
  expect(e.status).toBe(400);
  expect(e.message).toMatch(/^malformed context: /);
  if (message) expect(e.message).toMatch(message);
}

describe('context round trip', () => {
  it('round-trips arbitrary clocks and is canonical', () => {
    fc.assert(
      fc.property(contextClockArb, (clock) => {
        const s = encodeContext(clock);
        expect(s).toMatch(/^[A-Za-z0-9_-]+$/);
        const back = decodeContext(s);
        expect(back).toEqual(clock);
        expect(Object.keys(back).every((k) => Object.hasOwn(back, k))).toBe(true);
        // Same clock with keys inserted in another order: same string.
        expect(encodeContext(Object.fromEntries(Object.entries(clock).reverse()))).toBe(s);
        expect(encodeContext(back)).toBe(s);
        expect(decodeClock(encodeClock(clock))).toEqual(clock);
      }),
      RUNS,
    );
  });

  it('round-trips the empty clock to a non-empty string', () => {
    const s = encodeContext(emptyClock());
    expect(s.length).toBeGreaterThan(0);
    expect(decodeContext(s)).toEqual({});
  });

  it('round-trips edge actors and counters', () => {
    const clock: VersionVector = Object.fromEntries([
      ['__proto__', 1],
      ['constructor', MAX_CONTEXT_COUNTER],
      ['\uFEFFbom', 2 ** 32],
      ['😀', 127],
      ['x'.repeat(300), 128],
    ]);
    const back = decodeContext(encodeContext(clock));
    expect(back).toEqual(clock);
    expect(Object.hasOwn(back, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(back)).toBe(null); // a null-prototype clock: no inherited names at all
  });

  it('accepts the maximum number of entries', () => {
    const clock = Object.fromEntries(Array.from({ length: MAX_CONTEXT_ENTRIES }, (_, i) => [`n${i}.1`, i + 1]));
    const s = encodeContext(clock);
    expect(s.length).toBeLessThanOrEqual(MAX_CONTEXT_LENGTH);
    expect(decodeContext(s)).toEqual(clock);
  });

  it('refuses to encode an invalid clock', () => {
    const bad: VersionVector[] = [{ '': 1 }, { a: 0 }, { a: -1 }, { a: 1.5 }, { a: Number.NaN }, { a: 2 ** 53 }, { '\uD800': 1 }];
    for (const clock of bad) expect(() => encodeContext(clock)).toThrow(RingkvError);
  });
});

describe('decodeContext rejects malformed input', () => {
  const good = encodeContext({ 'n1.1': 3, 'n2.1': 1 });

  it('rejects non-strings and the empty string', () => {
    rejects('', /empty/);
    rejects(undefined as unknown as string, /not a string/);
    rejects(42 as unknown as string, /not a string/);
  });

  it('rejects characters outside base64url', () => {
    for (const s of [`${good}=`, `${good}==`, 'AQA=', 'AQ+A', 'AQ/A', 'AQ A', ' AQA', 'AQA\n', 'AQ.A', 'AQ%41', 'ÄQA', 'AQA\u0000']) {
      rejects(s, /base64url/);
    }
  });

  it('rejects truncated or non-canonical base64url', () => {
    rejects('A', /truncated base64url/);
    rejects('AQAAA', /truncated base64url/);
    // "AQB" decodes to the same bytes as "AQA" but with stray bits set.
    rejects('AQB', /non-canonical/);
  });

  it('rejects over-long strings before decoding', () => {
    rejects('A'.repeat(MAX_CONTEXT_LENGTH + 1), /longer than/);
    rejects(`${good}${'A'.repeat(MAX_CONTEXT_LENGTH)}`, /longer than/);
  });

  it('rejects unknown formats and truncated data', () => {
    rejects(b64([]), /empty string/); // no bytes at all encodes to ""
    rejects(b64([0]), /unknown format 0/);
    rejects(b64([2, 0]), /unknown format 2/);
    rejects(b64([1]), /truncated/);
    rejects(b64([1, 1]), /truncated/);
    rejects(b64([1, 1, 3, 0x61]), /truncated/);
    rejects(b64([1, 1, 1, 0x61]), /truncated/);
    rejects(b64([1, 1, 1, 0x61, 0x85]), /truncated/); // varint continues past the end
    rejects(raw([['a', [1]]], 2), /truncated/);
    // Every proper prefix of a good context is rejected.
    const bytes = Buffer.from(good, 'base64url');
    for (let n = 1; n < bytes.length; n++) rejects(b64(bytes.subarray(0, n)));
  });

  it('rejects bad counters', () => {
    rejects(raw([['a', [0]]]), /must be positive/);
    rejects(raw([['a', [0x80, 0x00]]]), /non-minimal/);
    rejects(raw([['a', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10]]]), /out of range/); // 2^53
    rejects(raw([['a', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]]]), /too long/);
    // 2^53 - 1 is a valid varint, but more than any replica can have minted: rejected.
    rejects(raw([['a', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]]]), /exceeds/);
    // MAX_CONTEXT_COUNTER (2^48) is the largest counter a context may carry.
    expect(decodeContext(encodeContext({ a: MAX_CONTEXT_COUNTER }))).toEqual({ a: MAX_CONTEXT_COUNTER });
    rejects(encodeContext({ a: MAX_CONTEXT_COUNTER + 1 }), /exceeds/);
  });

  it('rejects empty, duplicate, unordered and non-UTF-8 actors', () => {
    rejects(raw([['', [1]]]), /empty actor/);
    rejects(raw([['a', [1]], ['a', [2]]]), /duplicate actor "a"/);
    rejects(raw([['b', [1]], ['a', [2]]]), /canonical order/);
    rejects(b64([1, 1, 1, 0xff, 1]), /UTF-8/);
    rejects(b64([1, 1, 2, 0xc3, 0x28, 1]), /UTF-8/);
    rejects(b64([1, 1, 3, 0xed, 0xa0, 0x80, 1]), /UTF-8/); // an encoded lone surrogate
  });

  it('rejects too many entries', () => {
    rejects(b64([1, 0xe9, 0x07]), /too many entries/); // 1001
    const entries = Array.from({ length: MAX_CONTEXT_ENTRIES + 1 }, (_, i) => [`${i}`.padStart(4, '0'), [1]] as [string, number[]]);
    const bytes = [1, 0xe9, 0x07, ...entries.flatMap(([a, c]) => [a.length, ...utf8(a), ...c])];
    rejects(b64(bytes), /too many entries/);
  });

  it('rejects trailing garbage', () => {
    const bytes = Buffer.from(good, 'base64url');
    rejects(b64([...bytes, 0]), /trailing bytes/);
    rejects(b64([...bytes, 1, 1, 0x7a, 1]), /trailing bytes/);
    rejects(b64([1, 0, 0]), /trailing bytes/);
  });

  it('never throws anything but BAD_CONTEXT, and what it accepts re-encodes identically', () => {
    const candidates = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.string({ unit: fc.constantFrom(...'AQBCabcz09-_'.split('')), maxLength: 40 }),
      fc.uint8Array({ maxLength: 40 }).map((b) => b64(b)),
      fc.uint8Array({ maxLength: 40 }).map((b) => b64([1, ...b])),
      clockArb.chain((c) => {
        const bytes = Buffer.from(encodeContext(c), 'base64url');
        return fc.tuple(fc.nat(bytes.length), fc.integer({ min: 0, max: 255 })).map(([i, v]) => {
          const copy = Buffer.from(bytes);
          if (i < copy.length) copy[i] = v;
          return b64(copy);
        });
      }),
    );
    fc.assert(
      fc.property(candidates, (s) => {
        let clock: VersionVector;
        try {
          clock = decodeContext(s);
        } catch (err) {
          expect(err).toBeInstanceOf(RingkvError);
          expect((err as RingkvError).code).toBe('BAD_CONTEXT');
          return;
        }
        expect(encodeContext(clock)).toBe(s);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('binary clock helpers', () => {
  it('decodeClock rejects corrupt input with INTERNAL', () => {
    for (const bytes of [[], [2, 0], [1, 1], [1, 0, 0], [1, 1, 1, 0x61, 0]]) {
      expect(() => decodeClock(new Uint8Array(bytes))).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    }
  });
});
