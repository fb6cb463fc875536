import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  clocksEqual,
  contextAfterWrite,
  contextCoversAll,
  covers,
  decodeObject,
  descends,
  emptyClock,
  encodeObject,
  isDeleted,
  isStale,
  joinClocks,
  liveSiblings,
  MAX_SIBLINGS,
  merge,
  mergeKeepsIncoming,
  mergeMaybe,
  mint,
  sameVersion,
  siblingCount,
  versionDigest,
} from '../../../src/version/index.js';
import type { VersionedObject, WriteValue } from '../../../src/version/index.js';
import {
  clockArb,
  dotKey,
  dotKeys,
  mergeAll,
  objectArb,
  opArb,
  Sim,
  simulate,
  threeReachableArb,
} from './sim.js';

const RUNS = { numRuns: 1000 };
const text = (s: string): WriteValue => ({ value: new TextEncoder().encode(s), contentType: 'text/plain', deleted: false });
const del: WriteValue = { value: new Uint8Array([1, 2, 3]), contentType: 'text/plain', deleted: true };

describe('clocks', () => {
  it('descends, covers and join on examples', () => {
    expect(descends({ a: 2, b: 1 }, { a: 1 })).toBe(true);
    expect(descends({ a: 1 }, { a: 1, b: 1 })).toBe(false);
    expect(descends({}, {})).toBe(true);
    expect(descends({ a: 1 }, {})).toBe(true);
    expect(covers({ a: 3 }, { actor: 'a', counter: 3 })).toBe(true);
    expect(covers({ a: 3 }, { actor: 'a', counter: 4 })).toBe(false);
    expect(covers({ a: 3 }, { actor: 'b', counter: 1 })).toBe(false);
    expect(joinClocks({ a: 1, b: 5 }, { a: 3, c: 1 })).toEqual({ a: 3, b: 5, c: 1 });
    expect(emptyClock()).toEqual({});
  });

  it('treats actors named like Object.prototype members as ordinary actors', () => {
    const proto = Object.fromEntries([['__proto__', 4]]);
    expect(covers({}, { actor: 'constructor', counter: 1 })).toBe(false);
    expect(covers({}, { actor: 'toString', counter: 1 })).toBe(false);
    expect(descends({}, proto)).toBe(false);
    const joined = joinClocks({}, proto);
    expect(Object.keys(joined)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(joined)).toBe(null);
    expect(covers(joined, { actor: '__proto__', counter: 4 })).toBe(true);
    const { object } = mint(undefined, {}, text('x'), '__proto__', 1);
    expect(Object.hasOwn(object.clock, '__proto__')).toBe(true);
    expect(Object.entries(object.clock)).toEqual([['__proto__', 1]]);
  });

  it('join is a least upper bound', () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        const j = joinClocks(a, b);
        expect(descends(j, a) && descends(j, b)).toBe(true);
        expect(clocksEqual(j, joinClocks(b, a))).toBe(true);
        expect(descends(a, b)).toBe(clocksEqual(joinClocks(a, b), a));
      }),
      RUNS,
    );
  });
});

describe('mint', () => {
  it('still writes a key whose version grew past what a context may hold by merges alone, without a context or with its own', () => {
    // Two replicas each took a write whose context named 600 actors; merged, the version
    // names 1202. Refusing every later write of the key would be worse than its big clock.
    const forged = (tag: string): Record<string, number> => Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`${tag}${i}`, 1]));
    const a = mint(undefined, forged('a'), text('a'), 'n1.1', 1).object;
    const b = mint(undefined, forged('b'), text('b'), 'n2.1', 2).object;
    const big = merge(a, b);
    expect(Object.keys(big.clock).length).toBe(1202);
    expect(() => mint(big, emptyClock(), text('blind'), 'n1.1', 3, true)).not.toThrow();
    expect(() => mint(big, big.clock, text('read-modify-write'), 'n1.1', 3, true)).not.toThrow();
    // A context that brings actors the version lacks is refused, as it would not come back.
    expect(() => mint(big, { ...big.clock, c1: 1 }, text('more'), 'n1.1', 3, true)).toThrow(/context may hold/);
  });

  it('first write gets dot (actor, 1)', () => {
    const { object, dot } = mint(undefined, emptyClock(), text('v1'), 'n1.1', 1000);
    expect(dot).toEqual({ actor: 'n1.1', counter: 1 });
    expect(object.clock).toEqual({ 'n1.1': 1 });
    expect(object.siblings).toEqual([
      { dot, value: new TextEncoder().encode('v1'), contentType: 'text/plain', lastModified: 1000, deleted: false },
    ]);
  });

  it('a write without context adds a sibling; one with the read context replaces all', () => {
    const a = mint(undefined, {}, text('v1'), 'n1.1', 1).object;
    const b = mint(a, {}, text('v2'), 'n1.1', 2).object;
    expect(b.siblings.map((s) => s.dot.counter)).toEqual([1, 2]);
    const c = mint(b, b.clock, text('v3'), 'n1.1', 3);
    expect(c.object.siblings.map((s) => s.dot)).toEqual([{ actor: 'n1.1', counter: 3 }]);
    expect(c.object.clock).toEqual({ 'n1.1': 3 });
  });

  it('a stale context replaces only what it covers', () => {
    const a = mint(undefined, {}, text('v1'), 'n1.1', 1).object; // n1.1:1
    const readCtx = a.clock;
    const b = mint(a, {}, text('concurrent'), 'n1.1', 2).object; // n1.1:2, concurrent
    const c = mint(b, readCtx, text('v2'), 'n2.1', 3).object;
    expect(c.siblings.map((s) => dotKey(s.dot))).toEqual([dotKey({ actor: 'n1.1', counter: 2 }), dotKey({ actor: 'n2.1', counter: 1 })]);
    expect(c.clock).toEqual({ 'n1.1': 2, 'n2.1': 1 });
  });

  it('never reuses a counter the context has seen, even when the local copy is behind', () => {
    const { dot, object } = mint(undefined, { 'n1.1': 7 }, text('x'), 'n1.1', 1);
    expect(dot.counter).toBe(8);
    expect(object.clock).toEqual({ 'n1.1': 8 });
  });

  it('a delete is a tombstone sibling with an empty value', () => {
    const a = mint(undefined, {}, text('v1'), 'n1.1', 1).object;
    const { object } = mint(a, a.clock, del, 'n1.1', 2);
    expect(object.siblings).toHaveLength(1);
    expect(object.siblings[0]!.deleted).toBe(true);
    expect(object.siblings[0]!.value).toHaveLength(0);
    expect(isDeleted(object)).toBe(true);
    expect(liveSiblings(object)).toEqual([]);
  });

  it('does not modify its inputs', () => {
    const a = mint(undefined, {}, text('v1'), 'n1.1', 1).object;
    const snapshot = structuredClone(a);
    const ctx = { 'n1.1': 1 };
    mint(a, ctx, text('v2'), 'n2.1', 2);
    expect(a).toEqual(snapshot);
    expect(ctx).toEqual({ 'n1.1': 1 });
  });

  it('rejects an empty actor', () => {
    expect(() => mint(undefined, {}, text('x'), '', 1)).toThrow(/empty actor/);
  });
});

describe('contextAfterWrite', () => {
  it('covers the read plus the new write, so the next write replaces it', () => {
    const a = mint(undefined, {}, text('v1'), 'n1.1', 1);
    const ctx1 = contextAfterWrite({}, a.object, a.dot);
    expect(ctx1).toEqual({ 'n1.1': 1 });
    const b = mint(a.object, ctx1, text('v2'), 'n1.1', 2);
    expect(b.object.siblings).toHaveLength(1);
  });

  it('does not cover a concurrent sibling with the same actor', () => {
    const a = mint(undefined, {}, text('other client'), 'n1.1', 1);
    const b = mint(a.object, {}, text('mine'), 'n1.1', 2); // concurrent with a
    const ctx = contextAfterWrite({}, b.object, b.dot);
    expect(covers(ctx, a.dot)).toBe(false);
    const c = mint(b.object, ctx, text('mine again'), 'n1.1', 3);
    expect(c.object.siblings.map((s) => s.dot)).toContainEqual(a.dot);
  });

  it('falls back to the plain context while an unseen same-actor dot is still a sibling', () => {
    const a = mint(undefined, {}, text('v1'), 'n1.1', 1);
    const b = mint(a.object, a.object.clock, text('v2'), 'n1.1', 2); // supersedes a
    // A client that read nothing writes through n1.1: dot 3, while dot 2 is still live.
    const c = mint(b.object, {}, text('blind'), 'n1.1', 3);
    expect(contextAfterWrite({}, c.object, c.dot)).toEqual({});
    // A client that read only dot 1 writes through n1.1: dot 2 is live and unseen.
    const d = mint(b.object, a.object.clock, text('after a'), 'n1.1', 3);
    expect(contextAfterWrite(a.object.clock, d.object, d.dot)).toEqual({ 'n1.1': 1 });
  });

  it('covers unseen same-actor dots once they are superseded (no longer siblings)', () => {
    const a = mint(undefined, {}, text('v1'), 'n1.1', 1); // n1.1:1
    const x = mint(a.object, a.object.clock, text('v2'), 'n2.1', 2); // n2.1:1 supersedes it
    const local = merge(a.object, x.object); // what n1.1 holds after sync: only n2.1:1
    const w = mint(local, {}, text('blind'), 'n1.1', 3); // n1.1:2, concurrent with n2.1:1
    const ctx = contextAfterWrite({}, w.object, w.dot);
    expect(ctx).toEqual({ 'n1.1': 2 });
    expect(covers(ctx, x.dot)).toBe(false);
  });
});

describe('merge examples', () => {
  it('keeps concurrent siblings and drops superseded ones', () => {
    const base = mint(undefined, {}, text('v1'), 'a', 1).object;
    const left = mint(base, base.clock, text('left'), 'a', 2).object; // replaces v1 on a
    const right = mint(base, {}, text('right'), 'b', 3).object; // concurrent on b (has v1 too)
    const m = merge(left, right);
    expect(m.siblings.map((s) => dotKey(s.dot))).toEqual([dotKey({ actor: 'a', counter: 2 }), dotKey({ actor: 'b', counter: 1 })]);
    expect(m.clock).toEqual({ a: 2, b: 1 });
  });

  it('mergeMaybe handles missing sides', () => {
    const a = mint(undefined, {}, text('v1'), 'a', 1).object;
    expect(mergeMaybe(undefined, undefined)).toBeUndefined();
    expect(mergeMaybe(a, undefined)).toBe(a);
    expect(mergeMaybe(undefined, a)).toBe(a);
  });

  it('canonicalises unsorted or duplicated input', () => {
    const s1 = mint(undefined, {}, text('1'), 'b', 1).object.siblings[0]!;
    const s2 = mint(undefined, {}, text('2'), 'a', 1).object.siblings[0]!;
    const messy: VersionedObject = { clock: { a: 1, b: 1 }, siblings: [s1, s2, s1] };
    const m = merge(messy, { clock: {}, siblings: [] });
    expect(m.siblings).toEqual([s2, s1]);
    expect(sameVersion(messy, m)).toBe(true);
  });
});

/** Three objects at a time, from histories or arbitrary, for the algebra's property tests. */
const OBJECT_TRIPLES = [
  ['reachable objects', threeReachableArb],
  ['arbitrary well-formed objects', fc.tuple(objectArb({ wellFormed: true }), objectArb({ wellFormed: true }), objectArb({ wellFormed: true }))],
  ['arbitrary objects', fc.tuple(objectArb(), objectArb(), objectArb())],
  ['objects with clashing dots', fc.tuple(objectArb({ smallPools: true }), objectArb({ smallPools: true }), objectArb({ smallPools: true }))],
] as const;

describe('merge algebra', () => {
  for (const [name, arb] of OBJECT_TRIPLES) {
    describe(name, () => {
      it('is commutative', () => {
        fc.assert(
          fc.property(arb, ([a, b]) => {
            expect(merge(a, b)).toEqual(merge(b, a));
          }),
          RUNS,
        );
      });

      it('is associative', () => {
        fc.assert(
          fc.property(arb, ([a, b, c]) => {
            expect(merge(merge(a, b), c)).toEqual(merge(a, merge(b, c)));
          }),
          RUNS,
        );
      });

      it('is idempotent', () => {
        fc.assert(
          fc.property(arb, ([a, b]) => {
            expect(merge(a, a)).toEqual(a);
            const ab = merge(a, b);
            expect(merge(ab, ab)).toEqual(ab);
            expect(merge(ab, a)).toEqual(ab);
            expect(merge(ab, b)).toEqual(ab);
          }),
          RUNS,
        );
      });

      it('result descends both inputs and is not stale to them', () => {
        fc.assert(
          fc.property(arb, ([a, b]) => {
            const ab = merge(a, b);
            expect(descends(ab.clock, a.clock) && descends(ab.clock, b.clock)).toBe(true);
            expect(isStale(ab, a)).toBe(false);
            expect(isStale(ab, b)).toBe(false);
            expect(isStale(a, ab)).toBe(!sameVersion(a, ab));
          }),
          RUNS,
        );
      });
    });
  }
});

/** An object's stamp as the version cache keeps it: dots only, nothing of the values. */
const stampOf = (o: VersionedObject) => ({ clock: o.clock, siblings: o.siblings.map((x) => ({ dot: x.dot })) });

describe('deciding a write from the stored version alone (the version cache)', () => {
  for (const [name, arb] of OBJECT_TRIPLES) {
    it(`mergeKeepsIncoming(stamp of local, incoming) is exactly "merge gives incoming's version" (${name})`, () => {
      fc.assert(
        fc.property(arb, ([local, other, third]) => {
          // Incoming both as an unrelated object and as a newer version of local (the usual case).
          for (const incoming of [other, merge(local, other), merge(merge(local, other), third)]) {
            const keeps = mergeKeepsIncoming(stampOf(local), incoming);
            expect(keeps).toBe(sameVersion(merge(local, incoming), incoming));
            expect(mergeKeepsIncoming(local, incoming)).toBe(keeps);
          }
        }),
        RUNS,
      );
    });
  }

  it('mergeKeepsIncoming holds for a newer version, an equal one, and not for an older or concurrent one', () => {
    const v1 = mint(undefined, {}, text('a'), 'x', 1).object;
    const v2 = mint(v1, v1.clock, text('b'), 'x', 2).object;
    const c = mint(v1, v1.clock, text('c'), 'y', 3).object;
    expect(mergeKeepsIncoming(v1, v2)).toBe(true);
    expect(mergeKeepsIncoming(v2, v2)).toBe(true);
    expect(mergeKeepsIncoming(v2, v1)).toBe(false);
    expect(mergeKeepsIncoming(v2, c)).toBe(false);
    // A version whose clock has seen local's but which still holds a sibling local dropped
    // (only malformed input can): merge drops that sibling, so it is not incoming's version.
    const stale = { clock: v2.clock, siblings: [...v1.siblings, ...v2.siblings] };
    expect(mergeKeepsIncoming(v2, stale)).toBe(false);
    expect(sameVersion(merge(v2, stale), stale)).toBe(false);
  });

  it('contextCoversAll: then minting from the clock alone gives exactly what minting from the object gives', () => {
    fc.assert(
      fc.property(objectArb(), clockArb, fc.boolean(), (local, extra, fromLocal) => {
        // A context that is the local clock (the usual write) or an arbitrary one.
        const context = fromLocal ? joinClocks(local.clock, extra) : extra;
        const full = mint(local, context, text('v'), 'me', 7);
        if (contextCoversAll(context, stampOf(local))) {
          expect(mint({ clock: local.clock, siblings: [] }, context, text('v'), 'me', 7)).toEqual(full);
        } else {
          // Some sibling of local survives the write, which the clock alone cannot give.
          expect(full.object.siblings.some((x) => local.siblings.some((l) => l.dot === x.dot))).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('sameVersion and versionDigest read only the stamp', () => {
    fc.assert(
      fc.property(objectArb(), objectArb(), (a, b) => {
        expect(versionDigest(stampOf(a))).toBe(versionDigest(a));
        expect(sameVersion(stampOf(a), b)).toBe(sameVersion(a, b));
      }),
      RUNS,
    );
  });
});

describe('write semantics', () => {
  const ops = fc.array(opArb, { maxLength: 25, size: 'max' });

  it('a write with the read context replaces exactly what was read; concurrent siblings survive', () => {
    fc.assert(
      fc.property(ops, fc.nat(2), ops, fc.nat(2), fc.boolean(), (before, readAt, during, writeAt, isDelete) => {
        const sim = simulate(before);
        const read = sim.objects[readAt];
        const ctx = read?.clock ?? emptyClock();
        for (const op of during) sim.run(op);
        const everything = mergeAll(sim.objects);
        const local = sim.objects[writeAt];
        const { object, dot } = mint(local, ctx, isDelete ? del : text('new'), sim.actors[writeAt]!, 1);
        // At the coordinator: local siblings minus those the context covers, plus the new one.
        const expectedLocal = (local?.siblings ?? []).filter((s) => !covers(ctx, s.dot)).map((s) => dotKey(s.dot));
        expect(dotKeys(object)).toEqual([...expectedLocal, dotKey(dot)].sort());
        // After full sync: every sibling anyone holds survives unless the read covered it.
        sim.objects[writeAt] = object;
        const final = sim.fullSync();
        const expected = (everything?.siblings ?? []).filter((s) => !covers(ctx, s.dot)).map((s) => dotKey(s.dot));
        expect(dotKeys(final)).toEqual([...expected, dotKey(dot)].sort());
        for (const s of read?.siblings ?? []) expect(dotKeys(final)).not.toContain(dotKey(s.dot));
      }),
      RUNS,
    );
  });

  it('concurrent writes all survive as siblings, on every replica, in any merge order', () => {
    const write = fc.record({ at: fc.nat(2), ctxFrom: fc.option(fc.nat(2)), del: fc.boolean() });
    const sync = fc.record({ from: fc.nat(2), to: fc.nat(2) });
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 20, size: 'max' }),
        fc.array(fc.tuple(write, fc.array(sync, { maxLength: 3 })), { minLength: 2, maxLength: 5 }),
        fc.array(fc.nat(2), { minLength: 3, maxLength: 6 }),
        fc.array(fc.nat(2), { minLength: 3, maxLength: 6 }),
        (before, writes, order1, order2) => {
          const sim = simulate(before);
          // Every context is read before any of the concurrent writes happens.
          const contexts = sim.objects.map((o) => o?.clock ?? emptyClock());
          const dots: string[] = [];
          for (const [w, syncs] of writes) {
            const ctx = w.ctxFrom === null ? emptyClock() : contexts[w.ctxFrom]!;
            const { object, dot } = mint(sim.objects[w.at], ctx, w.del ? del : text('c'), sim.actors[w.at]!, 1);
            sim.objects[w.at] = object;
            dots.push(dotKey(dot));
            for (const s of syncs) sim.sync(s.from, s.to);
          }
          const replicasBefore = [...sim.objects];
          const a = sim.fullSync([...order1, 0, 1, 2]);
          for (const o of sim.objects) {
            expect(o).toEqual(a);
            for (const d of dots) expect(dotKeys(o)).toContain(d);
          }
          // A different merge order gives the same object.
          expect(mergeAll([...order2, 0, 1, 2].map((i) => replicasBefore[i]))).toEqual(a);
        },
      ),
      RUNS,
    );
  });

  it('sequential writes passing contexts never produce siblings, across actors and replicas', () => {
    const step = fc.oneof(
      fc.record({ t: fc.constant('write' as const), at: fc.nat(2), del: fc.boolean(), readFirst: fc.boolean() }),
      fc.record({ t: fc.constant('sync' as const), from: fc.nat(2), to: fc.nat(2) }),
    );
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
        const sim = new Sim();
        let ctx = emptyClock();
        let lastAt: number | undefined;
        let last: string | undefined;
        for (const s of steps) {
          if (s.t === 'sync') {
            sim.sync(s.from, s.to);
          } else {
            // Either keep the context the last write returned, or re-read where it landed.
            if (s.readFirst && lastAt !== undefined) ctx = sim.objects[lastAt]!.clock;
            const { object, dot } = mint(sim.objects[s.at], ctx, s.del ? del : text('s'), sim.actors[s.at]!, 1);
            sim.objects[s.at] = object;
            ctx = contextAfterWrite(ctx, object, dot);
            expect(covers(ctx, dot)).toBe(true);
            lastAt = s.at;
            last = dotKey(dot);
          }
          for (const o of sim.objects) expect(siblingCount(o ?? { clock: {}, siblings: [] })).toBeLessThanOrEqual(1);
        }
        const final = sim.fullSync();
        if (last !== undefined) expect(dotKeys(final)).toEqual([last]);
      }),
      RUNS,
    );
  });
});

describe('staleness and versions', () => {
  it('isStale on examples', () => {
    const a = mint(undefined, {}, text('v1'), 'a', 1).object;
    const b = mint(a, a.clock, text('v2'), 'a', 2).object;
    expect(isStale(undefined, a)).toBe(true);
    expect(isStale(undefined, { clock: {}, siblings: [] })).toBe(false);
    expect(isStale(a, b)).toBe(true);
    expect(isStale(b, a)).toBe(false);
    expect(isStale(b, b)).toBe(false);
    // Same clock, but the replica still holds a sibling the merged version dropped.
    const weird: VersionedObject = { clock: b.clock, siblings: [...a.siblings, ...b.siblings] };
    expect(isStale(weird, b)).toBe(true);
  });

  it('sameVersion ignores clock key order and value memory', () => {
    const a = mint(undefined, {}, text('v1'), 'a', 1).object;
    const b = mint(a, {}, text('v2'), 'b', 2).object;
    const reordered: VersionedObject = { clock: { b: 1, a: 1 }, siblings: b.siblings };
    expect(sameVersion(b, reordered)).toBe(true);
    expect(sameVersion(a, b)).toBe(false);
  });

  it('versionDigest is equal for equal versions', () => {
    fc.assert(
      fc.property(objectArb({ wellFormed: true }), (obj) => {
        const copy = decodeObject(encodeObject(obj));
        const reversedClock: VersionedObject = {
          clock: Object.fromEntries(Object.entries(obj.clock).reverse()),
          siblings: obj.siblings.map((s) => ({ ...s, value: new Uint8Array(s.value) })),
        };
        const d = versionDigest(obj);
        expect(Number.isInteger(d) && d >= 0 && d < 2 ** 32).toBe(true);
        expect(versionDigest(copy)).toBe(d);
        expect(versionDigest(reversedClock)).toBe(d);
      }),
      RUNS,
    );
  });

  it('versionDigest tells different versions apart', () => {
    fc.assert(
      fc.property(threeReachableArb, ([a, b]) => {
        if (!sameVersion(a, b)) expect(versionDigest(a)).not.toBe(versionDigest(b));
        else expect(versionDigest(a)).toBe(versionDigest(b));
      }),
      RUNS,
    );
    // A single counter step and a moved dot both change the digest.
    const a = mint(undefined, {}, text('v1'), 'a', 1).object;
    expect(versionDigest({ ...a, clock: { a: 2 } })).not.toBe(versionDigest(a));
    expect(versionDigest({ clock: { a: 1, b: 1 }, siblings: [] })).not.toBe(versionDigest({ clock: { ab: 1 }, siblings: [] }));
  });

  it('sibling helpers', () => {
    expect(MAX_SIBLINGS).toBe(100);
    const empty: VersionedObject = { clock: {}, siblings: [] };
    expect(isDeleted(empty)).toBe(true);
    expect(siblingCount(empty)).toBe(0);
    const a = mint(undefined, {}, text('v1'), 'a', 1).object;
    const b = mint(a, {}, del, 'a', 2).object; // a value and a concurrent tombstone
    expect(siblingCount(b)).toBe(2);
    expect(isDeleted(b)).toBe(false);
    expect(liveSiblings(b).map((s) => s.dot.counter)).toEqual([1]);
  });
});
