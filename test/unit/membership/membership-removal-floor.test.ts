/**
 * The member table with sticky removals: records carry the start of their membership
 * (`since`) and the latest removal known (`removedAt`); the merge must stay a semilattice,
 * agree with older versions on records without those fields, and never let a record of a
 * membership that began before a removal undo it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RingkvError } from '../../../src/errors.js';
import { decodeGossip, encodeGossip } from '../../../src/membership/gossip.js';
import {
  applyRecords,
  compareRecords,
  type MemberTable,
  mergeRecord,
  mergeTables,
  parseRecord,
  sortedRecords,
} from '../../../src/membership/table.js';
import type { MemberRecord, MemberState } from '../../../src/membership/types.js';

const RUNS = 1000;

function rec(over: Partial<MemberRecord> & { id: string }): MemberRecord {
  return { address: `${over.id}:1`, zone: 'z', weight: 1, state: 'active', incarnation: 1, heartbeat: 0, ...over };
}

/**
 * Records of one member's history as nodes of this version write and merge them: within an
 * incarnation a member's address and membership start (`since`) are fixed (it writes both
 * once per life), a live record always has a `since`, and a removal may be known by any
 * record. Parsed, so valid and settled. (Records without `since`, from older versions, are
 * covered by table.test.ts; copies stripped of it in a mixed cluster by the cases below.)
 */
const historyArb = fc.array(fc.nat(4), { minLength: 5, maxLength: 5 }).map((xs) => xs.map((x, inc) => Math.min(x, inc)));

const recordArb = (sinceByInc: readonly number[], ids: readonly string[] = ['a', 'b']): fc.Arbitrary<MemberRecord> =>
  fc
    .record({
      id: fc.constantFrom(...ids),
      state: fc.constantFrom<MemberState>('joining', 'active', 'leaving', 'removed'),
      incarnation: fc.integer({ min: 0, max: 4 }),
      heartbeat: fc.integer({ min: 0, max: 2 }),
      keepSince: fc.boolean(),
      removedAt: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
    })
    .map(({ id, state, incarnation, heartbeat, keepSince, removedAt }) => {
      const o: Record<string, unknown> = { id, address: `h${incarnation % 2}:1`, zone: 'z1', weight: 1, state, incarnation, heartbeat };
      if (state !== 'removed' || keepSince) o.since = sinceByInc[incarnation];
      if (removedAt !== undefined && removedAt <= incarnation) o.removedAt = removedAt;
      return parseRecord(o) as MemberRecord;
    });

const tablesArb = (count: number): fc.Arbitrary<MemberTable[]> =>
  historyArb.chain((h) =>
    fc.array(
      fc.uniqueArray(recordArb(h), { selector: (r) => r.id, maxLength: 2 }).map((rs) => new Map(rs.map((r) => [r.id, r]))),
      { minLength: count, maxLength: count },
    ),
  );

const canon = (t: MemberTable): MemberRecord[] => sortedRecords(t);

describe('merge with since/removedAt (properties)', () => {
  it('is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(tablesArb(3), ([a, b, c]) => {
        if (a === undefined || b === undefined || c === undefined) return;
        expect(canon(mergeTables(a, b))).toEqual(canon(mergeTables(b, a)));
        expect(canon(mergeTables(mergeTables(a, b), c))).toEqual(canon(mergeTables(a, mergeTables(b, c))));
        expect(canon(mergeTables(a, a))).toEqual(canon(a));
        const ab = mergeTables(a, b);
        expect(canon(mergeTables(ab, b))).toEqual(canon(ab));
      }),
      { numRuns: RUNS },
    );
  });

  it('gives the same table whatever order records arrive in, duplicates included', () => {
    const arb = historyArb.chain((h) => fc.array(recordArb(h), { maxLength: 8 })).chain((rs) =>
      fc.tuple(fc.constant(rs), fc.shuffledSubarray([...rs, ...rs], { minLength: 2 * rs.length, maxLength: 2 * rs.length })),
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

  it('never goes down: the merge is at least each input under the record order', () => {
    fc.assert(
      fc.property(historyArb.chain((h) => fc.tuple(recordArb(h, ['a']), recordArb(h, ['a']))), ([a, b]) => {
        const m = mergeRecord(a, b);
        expect(compareRecords(m, a)).toBeGreaterThanOrEqual(0);
        expect(compareRecords(m, b)).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('with copies stripped by older versions mixed in: still commutative, and never below either input', () => {
    const stripped = (r: MemberRecord, how: number): MemberRecord => {
      const { since, removedAt, ...rest } = r;
      if (how === 0) return r;
      if (how === 1) return parseRecord(rest) as MemberRecord;
      return parseRecord(how === 2 ? { ...rest, since } : { ...rest, removedAt }) as MemberRecord;
    };
    const arb = historyArb.chain((h) =>
      fc.tuple(recordArb(h, ['a']), fc.nat(3), recordArb(h, ['a']), fc.nat(3)).map(([a, i, b, j]) => [stripped(a, i), stripped(b, j)] as const),
    );
    fc.assert(
      fc.property(arb, ([a, b]) => {
        const m = mergeRecord(a, b);
        expect(m).toEqual(mergeRecord(b, a));
        expect(compareRecords(m, a)).toBeGreaterThanOrEqual(0);
        expect(compareRecords(m, b)).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('keeps every removal: a membership begun at or before a removal merged in is over', () => {
    fc.assert(
      fc.property(historyArb.chain((h) => fc.array(recordArb(h, ['a']), { minLength: 1, maxLength: 6 })), (records) => {
        const t = new Map<string, MemberRecord>();
        applyRecords(t, records);
        const m = t.get('a') as MemberRecord;
        const latestRemoval = Math.max(-1, ...records.map((r) => r.removedAt ?? (r.state === 'removed' ? r.incarnation : -1)));
        if (m.state !== 'removed') expect(m.since ?? m.incarnation).toBeGreaterThan(latestRemoval);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('merge with since/removedAt (cases)', () => {
  const removal = rec({ id: 'd', state: 'removed', incarnation: 450, heartbeat: 3, since: 100 });
  const resumed = rec({ id: 'd', state: 'active', incarnation: 600, heartbeat: 2, since: 100 });
  const rejoined = rec({ id: 'd', state: 'joining', incarnation: 700, heartbeat: 1, since: 700 });

  it('a resumed life (same since, newer incarnation) does not undo a removal, in either order', () => {
    for (const m of [mergeRecord(removal, resumed), mergeRecord(resumed, removal)]) {
      expect(m).toEqual({ ...resumed, state: 'removed', heartbeat: 0, removedAt: 450 });
    }
    // ... and the resumed life's later records of that incarnation lose to it too.
    const later = { ...resumed, heartbeat: 9 };
    expect(mergeRecord(mergeRecord(removal, resumed), later).state).toBe('removed');
  });

  it('a new join (since past the removal) comes back, carrying the removal along', () => {
    const m = mergeRecord(mergeRecord(removal, resumed), rejoined);
    expect(m).toEqual({ ...rejoined, removedAt: 450 });
    // A record of the old membership arriving late changes nothing.
    expect(mergeRecord(m, { ...resumed, heartbeat: 50 })).toBe(m);
  });

  it('a copy stripped by an older version takes the since of a copy of the same incarnation', () => {
    const { since: _, ...stripped } = { ...resumed, heartbeat: 7 };
    expect(mergeRecord({ ...resumed, removedAt: 50 }, stripped)).toEqual({ ...stripped, since: 100, removedAt: 50 });
    // Without any since to take, it is read as older versions read it: begun at its incarnation.
    expect(mergeRecord(removal, stripped)).toBe(stripped);
  });

  it('records without since/removedAt merge exactly as older versions merge them', () => {
    const live = rec({ id: 'a', incarnation: 5, heartbeat: 900 });
    const removed = rec({ id: 'a', incarnation: 5, heartbeat: 3, state: 'removed' });
    const reborn = rec({ id: 'a', incarnation: 6, state: 'joining' });
    expect(mergeRecord(live, removed)).toBe(removed);
    expect(mergeRecord(removed, reborn)).toBe(reborn);
  });

  it('parseRecord keeps since/removedAt, settles a live record its removal ended, rejects them above the incarnation', () => {
    expect(parseRecord({ ...rejoined, removedAt: 450 })).toEqual({ ...rejoined, removedAt: 450 });
    expect(parseRecord({ ...resumed, removedAt: 450 })).toEqual({ ...resumed, state: 'removed', heartbeat: 0, removedAt: 450 });
    expect(parseRecord({ ...removal, removedAt: 450 })).toEqual(removal);
    expect(parseRecord({ ...resumed, since: 601 })).toBeUndefined();
    expect(parseRecord({ ...resumed, removedAt: 601 })).toBeUndefined();
    expect(parseRecord({ ...resumed, since: -1 })).toBeUndefined();
    expect(parseRecord({ ...resumed, since: '100' })).toBeUndefined();
    expect(parseRecord({ ...resumed, removedAt: 1.5 })).toBeUndefined();
  });
});

describe('gossip decoding with the new fields', () => {
  it('refuses anything malformed with BAD_REQUEST, and never throws otherwise', () => {
    const field = fc.oneof(fc.integer({ min: -2, max: 6 }), fc.double(), fc.string(), fc.constant(null), fc.constant(undefined), fc.boolean());
    const raw = fc.record(
      {
        id: fc.oneof(fc.constant('a'), fc.string(), fc.integer()),
        address: fc.oneof(fc.constant('h:1'), fc.integer()),
        zone: fc.constant('z'),
        weight: fc.oneof(fc.constant(1), field),
        state: fc.oneof(fc.constantFrom('joining', 'active', 'leaving', 'removed'), fc.string()),
        incarnation: fc.oneof(fc.integer({ min: 0, max: 5 }), field),
        heartbeat: fc.oneof(fc.integer({ min: 0, max: 5 }), field),
        since: field,
        removedAt: field,
      },
      { requiredKeys: [] },
    );
    const encoder = new TextEncoder();
    fc.assert(
      fc.property(fc.array(raw, { maxLength: 4 }), (records) => {
        const body = encoder.encode(JSON.stringify({ from: 'p', records }));
        try {
          const msg = decodeGossip(body);
          // What is accepted is valid, settled, and encodes back to the same records.
          for (const r of msg.records) expect(parseRecord(r)).toEqual(r);
          expect(decodeGossip(encodeGossip('p', msg.records)).records).toEqual(msg.records);
        } catch (err) {
          expect(err).toBeInstanceOf(RingkvError);
          expect((err as RingkvError).code).toBe('BAD_REQUEST');
        }
      }),
      { numRuns: RUNS },
    );
  });
});
