import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, ResolveError, resolvers, type Sibling } from '../../../src/client/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function sib(value: string | Uint8Array, lastModified = 0, contentType = 'application/json'): Sibling {
  return { value: typeof value === 'string' ? enc.encode(value) : value, contentType, lastModified: new Date(lastModified) };
}

/** A resolver's output as a sibling again, so results can be fed back in (associativity). */
function asSibling(v: Uint8Array | string): Sibling {
  return sib(v);
}

describe('lastWriterWins', () => {
  it('picks the sibling with the latest lastModified', () => {
    const out = resolvers.lastWriterWins([sib('old', 1000), sib('new', 3000), sib('mid', 2000)]);
    expect(dec.decode(out)).toBe('new');
  });

  it('breaks ties on the bytes, whatever the order', () => {
    const a = sib('apple', 5000);
    const b = sib('banana', 5000);
    expect(dec.decode(resolvers.lastWriterWins([a, b]))).toBe('banana');
    expect(dec.decode(resolvers.lastWriterWins([b, a]))).toBe('banana');
  });

  it('ranks an invalid date below every valid one', () => {
    const bad: Sibling = { value: enc.encode('zzz'), contentType: 'x', lastModified: new Date(Number.NaN) };
    expect(dec.decode(resolvers.lastWriterWins([bad, sib('aaa', 0)]))).toBe('aaa');
    expect(dec.decode(resolvers.lastWriterWins([sib('aaa', 0), bad]))).toBe('aaa');
  });

  it('refuses an empty list', () => {
    expect(() => resolvers.lastWriterWins([])).toThrow(InvalidArgumentError);
  });

  it('does not depend on sibling order (property)', () => {
    const arbSib = fc
      .record({ bytes: fc.uint8Array({ maxLength: 4 }), t: fc.integer({ min: 0, max: 3 }) })
      .map(({ bytes, t }) => sib(bytes, t));
    fc.assert(
      fc.property(fc.array(arbSib, { minLength: 1, maxLength: 6 }), fc.infiniteStream(fc.nat()), (sibs, seeds) => {
        const shuffled = [...sibs];
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = seeds.next().value % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        expect([...resolvers.lastWriterWins(shuffled)]).toEqual([...resolvers.lastWriterWins(sibs)]);
      }),
    );
  });
});

describe('jsonSetUnion', () => {
  it('unions JSON arrays, sorted by element JSON, without duplicates', () => {
    const out = resolvers.jsonSetUnion([sib('["milk","eggs"]'), sib('["bread","milk"]'), sib('[3,1]')]);
    expect(JSON.parse(out)).toEqual([1, 3, 'bread', 'eggs', 'milk'].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)));
    expect(out).toBe('["bread","eggs","milk",1,3]');
  });

  it('treats objects with the same fields in another order as one element', () => {
    const out = resolvers.jsonSetUnion([sib('[{"a":1,"b":[2,{"d":1,"c":0}]}]'), sib('[{"b":[2,{"c":0,"d":1}],"a":1}]')]);
    expect(out).toBe('[{"a":1,"b":[2,{"c":0,"d":1}]}]');
  });

  it('returns [] for no siblings', () => {
    expect(resolvers.jsonSetUnion([])).toBe('[]');
  });

  it.each([
    ['an object', '{"a":1}'],
    ['a string', '"x"'],
    ['null', 'null'],
    ['not JSON', '[1,2'],
  ])('throws a ResolveError naming the sibling when one is %s', (_what, text) => {
    let caught: unknown;
    try {
      resolvers.jsonSetUnion([sib('[1]'), sib(text)]);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ResolveError);
    expect((caught as ResolveError).index).toBe(1);
    expect((caught as ResolveError).code).toBe('BAD_SIBLING');
  });

  it('throws on bytes that are not UTF-8', () => {
    expect(() => resolvers.jsonSetUnion([sib(new Uint8Array([0x5b, 0xff, 0x5d]))])).toThrow(ResolveError);
  });

  const jsonSet = fc.array(fc.oneof(fc.integer({ min: -5, max: 5 }), fc.string({ maxLength: 3 }), fc.boolean(), fc.constant(null), fc.dictionary(fc.string({ maxLength: 2 }), fc.nat(3), { maxKeys: 2 })), { maxLength: 6 });
  const arbSibling = jsonSet.map((xs) => sib(JSON.stringify(xs)));

  it('is commutative (property)', () => {
    fc.assert(
      fc.property(arbSibling, arbSibling, (a, b) => {
        expect(resolvers.jsonSetUnion([a, b])).toBe(resolvers.jsonSetUnion([b, a]));
      }),
    );
  });

  it('is associative (property)', () => {
    fc.assert(
      fc.property(arbSibling, arbSibling, arbSibling, (a, b, c) => {
        const left = resolvers.jsonSetUnion([asSibling(resolvers.jsonSetUnion([a, b])), c]);
        const right = resolvers.jsonSetUnion([a, asSibling(resolvers.jsonSetUnion([b, c]))]);
        expect(left).toBe(right);
        expect(left).toBe(resolvers.jsonSetUnion([a, b, c]));
      }),
    );
  });

  it('is idempotent (property)', () => {
    fc.assert(
      fc.property(arbSibling, (a) => {
        const once = resolvers.jsonSetUnion([a]);
        expect(resolvers.jsonSetUnion([a, a])).toBe(once);
        expect(resolvers.jsonSetUnion([asSibling(once)])).toBe(once);
      }),
    );
  });

  it('keeps every element of every sibling (property)', () => {
    fc.assert(
      fc.property(fc.array(jsonSet, { maxLength: 5 }), (sets) => {
        const out = JSON.parse(resolvers.jsonSetUnion(sets.map((xs) => sib(JSON.stringify(xs))))) as unknown[];
        for (const xs of sets) for (const x of xs) expect(out).toContainEqual(x);
      }),
    );
  });
});
