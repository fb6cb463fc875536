import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyRecords,
  compareRecords,
  isNewerBeat,
  isSignificant,
  type MemberTable,
  mergeRecord,
  mergeTables,
  parseRecord,
  ringKey,
  ringMembersOf,
  sortedRecords,
} from '../../../src/membership/table.js';
import type { MemberRecord, MemberState } from '../../../src/membership/types.js';

const RUNS = 1000;

function rec(over: Partial<MemberRecord> & { id: string }): MemberRecord {
  return { address: `${over.id}:1`, zone: 'z', weight: 1, state: 'active', incarnation: 1, heartbeat: 0, ...over };
}

// Small domains on purpose: collisions (same id, same incarnation, ...) are the interesting cases.
const recordArb = (ids: readonly string[] = ['a', 'b', 'c']): fc.Arbitrary<MemberRecord> =>
  fc.record({
    id: fc.constantFrom(...ids),
    address: fc.constantFrom('h1:1', 'h2:1'),
    zone: fc.constantFrom('z1', 'z2'),
    weight: fc.constantFrom(1, 2),
    state: fc.constantFrom<MemberState>('joining', 'active', 'leaving', 'removed'),
    incarnation: fc.integer({ min: 0, max: 3 }),
    heartbeat: fc.integer({ min: 0, max: 3 }),
  });

const tableArb: fc.Arbitrary<MemberTable> = fc
  .uniqueArray(recordArb(), { selector: (r) => r.id, maxLength: 3 })
  .map((rs) => new Map(rs.map((r) => [r.id, r])));

/** A canonical form for comparing tables. */
const canon = (t: MemberTable): MemberRecord[] => sortedRecords(t);

describe('member table merge (properties)', () => {
  it('is commutative', () => {
    fc.assert(
      fc.property(tableArb, tableArb, (a, b) => {
        expect(canon(mergeTables(a, b))).toEqual(canon(mergeTables(b, a)));
      }),
      { numRuns: RUNS },
    );
  });

  it('is associative', () => {
    fc.assert(
      fc.property(tableArb, tableArb, tableArb, (a, b, c) => {
        expect(canon(mergeTables(mergeTables(a, b), c))).toEqual(canon(mergeTables(a, mergeTables(b, c))));
      }),
      { numRuns: RUNS },
    );
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(tableArb, tableArb, (a, b) => {
        expect(canon(mergeTables(a, a))).toEqual(canon(a));
        const ab = mergeTables(a, b);
        expect(canon(mergeTables(ab, b))).toEqual(canon(ab));
        expect(canon(mergeTables(ab, a))).toEqual(canon(ab));
      }),
      { numRuns: RUNS },
    );
  });

  it('gives the same table whatever order records arrive in, duplicates included', () => {
    const arb = fc.array(recordArb(), { maxLength: 10 }).chain((rs) =>
      fc.tuple(
        fc.constant(rs),
        fc.shuffledSubarray([...rs, ...rs], { minLength: 2 * rs.length, maxLength: 2 * rs.length }),
      ),
    );
    fc.assert(
      fc.property(arb, ([records, permuted]) => {
        const forward = new Map<string, MemberRecord>();
        applyRecords(forward, records);
        const other = new Map<string, MemberRecord>();
        applyRecords(other, permuted);
        expect(canon(other)).toEqual(canon(forward));
      }),
      { numRuns: RUNS },
    );
  });

  it('orders records of one member totally (antisymmetric, transitive, 0 only for equal records)', () => {
    const one = recordArb(['a']);
    fc.assert(
      fc.property(one, one, one, (a, b, c) => {
        expect(Math.sign(compareRecords(a, b)) + Math.sign(compareRecords(b, a))).toBe(0);
        if (compareRecords(a, b) === 0) expect(a).toEqual(b);
        if (compareRecords(a, b) <= 0 && compareRecords(b, c) <= 0) expect(compareRecords(a, c)).toBeLessThanOrEqual(0);
        const m = mergeRecord(a, b);
        expect(m === a || m === b).toBe(true);
        expect(compareRecords(m, a)).toBeGreaterThanOrEqual(0);
        expect(compareRecords(m, b)).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('member table merge (cases)', () => {
  it('lets removed beat active at the same incarnation, whatever the heartbeat', () => {
    const live = rec({ id: 'a', incarnation: 5, heartbeat: 900 });
    const removed = rec({ id: 'a', incarnation: 5, heartbeat: 3, state: 'removed' });
    expect(mergeRecord(live, removed)).toBe(removed);
    expect(mergeRecord(removed, live)).toBe(removed);
  });

  it('lets a newer incarnation beat removed (a restart comes back)', () => {
    const removed = rec({ id: 'a', incarnation: 5, state: 'removed' });
    const reborn = rec({ id: 'a', incarnation: 6, state: 'joining' });
    expect(mergeRecord(removed, reborn)).toBe(reborn);
  });

  it('orders states removed > leaving > active > joining, then heartbeats', () => {
    const at = (state: MemberState, heartbeat = 0): MemberRecord => rec({ id: 'a', state, heartbeat });
    expect(compareRecords(at('leaving'), at('active', 50))).toBeGreaterThan(0);
    expect(compareRecords(at('active'), at('joining', 50))).toBeGreaterThan(0);
    expect(compareRecords(at('active', 2), at('active', 1))).toBeGreaterThan(0);
  });

  it('reports only what changed', () => {
    const t = new Map<string, MemberRecord>();
    const a1 = rec({ id: 'a', heartbeat: 1 });
    expect(applyRecords(t, [a1])).toEqual([{ before: undefined, after: a1 }]);
    expect(applyRecords(t, [a1, rec({ id: 'a', heartbeat: 0 })])).toEqual([]);
    const a2 = rec({ id: 'a', heartbeat: 2 });
    const changes = applyRecords(t, [a2]);
    expect(changes).toEqual([{ before: a1, after: a2 }]);
    expect(isSignificant(changes[0]!)).toBe(false);
    expect(isNewerBeat(a1, a2)).toBe(true);
    expect(isSignificant({ before: a2, after: { ...a2, state: 'leaving' } })).toBe(true);
    expect(isSignificant({ before: undefined, after: a2 })).toBe(true);
    expect(isNewerBeat(a2, { ...a2, state: 'removed' })).toBe(false);
  });

  it('builds the ring from active and leaving members only', () => {
    const t = new Map<string, MemberRecord>(
      [
        rec({ id: 'd', state: 'removed' }),
        rec({ id: 'c', state: 'leaving', zone: 'z2', weight: 2 }),
        rec({ id: 'b', state: 'joining' }),
        rec({ id: 'a', state: 'active' }),
      ].map((r) => [r.id, r]),
    );
    expect(ringMembersOf(t)).toEqual([
      { id: 'a', zone: 'z', weight: 1 },
      { id: 'c', zone: 'z2', weight: 2 },
    ]);
    expect(ringKey(ringMembersOf(t))).not.toBe(ringKey([{ id: 'a', zone: 'z', weight: 1 }]));
  });
});

describe('parseRecord', () => {
  it('accepts a valid record and strips unknown fields', () => {
    const r = rec({ id: 'a' });
    expect(parseRecord({ ...r, extra: 1 })).toEqual(r);
  });

  it.each([
    null,
    'x',
    {},
    { ...rec({ id: 'a' }), id: '' },
    { ...rec({ id: 'a' }), state: 'dead' },
    { ...rec({ id: 'a' }), weight: 0 },
    { ...rec({ id: 'a' }), weight: Number.NaN },
    { ...rec({ id: 'a' }), incarnation: 1.5 },
    { ...rec({ id: 'a' }), heartbeat: -1 },
    { ...rec({ id: 'a' }), address: 7 },
  ])('rejects %j', (v) => {
    expect(parseRecord(v)).toBeUndefined();
  });
});
