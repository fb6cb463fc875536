/** The ring is a function of the member set, n and partition bits; the checksum tracks routing. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildRing, type Ring, type RingMember } from '../../../src/ring/index.js';
import { membersArb } from './arbitraries.js';

const RUNS = 50;
const ZONES = ['a', 'b', 'c', 'd', 'e'];

function checksumOf(members: readonly RingMember[], n = 3, partitionBits = 12): string {
  return buildRing(members, { n, partitionBits }).checksum;
}

function sameRouting(a: Ring, b: Ring): boolean {
  for (let p = 0; p < a.partitions; p++) {
    if (a.fullOrder(p).join('\0') !== b.fullOrder(p).join('\0')) return false;
  }
  return true;
}

describe('determinism', () => {
  it('the input order of the members does not matter', () => {
    fc.assert(
      fc.property(
        membersArb({ minLength: 1, maxLength: 12, zones: ZONES, weights: [1, 2] }).chain((ms) =>
          fc.tuple(fc.constant(ms), fc.shuffledSubarray(ms, { minLength: ms.length, maxLength: ms.length })),
        ),
        ([members, shuffled]) => {
          const a = buildRing(members, { n: 3 });
          const b = buildRing(shuffled, { n: 3 });
          expect(b.checksum).toBe(a.checksum);
          expect(b.members).toEqual(a.members);
          for (const p of [0, 1, 777, 65535]) expect(b.fullOrder(p)).toEqual(a.fullOrder(p));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('different member sets, n, partition bits or weights give different checksums (partitionBits 12)', () => {
    fc.assert(
      fc.property(
        membersArb({ minLength: 2, maxLength: 12, zones: ZONES }),
        fc.nat(),
        (members, pick) => {
          const i = pick % members.length;
          const base = checksumOf(members);
          expect(checksumOf(members.filter((_, j) => j !== i))).not.toBe(base);
          expect(checksumOf([...members, { id: '\u{1F4A9}new', zone: 'a', weight: 1 }])).not.toBe(base);
          expect(checksumOf(members, 4)).not.toBe(base);
          expect(checksumOf(members, 3, 13)).not.toBe(base);
          const reweighted = members.map((m, j) => (j === i ? { ...m, weight: 3 } : m));
          expect(checksumOf(reweighted)).not.toBe(base);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('renaming zones one-to-one changes no routing, and so not the checksum', () => {
    fc.assert(
      fc.property(membersArb({ minLength: 1, maxLength: 10, zones: ZONES }), (members) => {
        const a = buildRing(members, { n: 3, partitionBits: 12 });
        const b = buildRing(
          members.map((m) => ({ ...m, zone: `renamed-${m.zone}` })),
          { n: 3, partitionBits: 12 },
        );
        expect(b.checksum).toBe(a.checksum);
        expect(sameRouting(a, b)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('moving a node to another zone changes the checksum exactly when routing changes', () => {
    fc.assert(
      fc.property(membersArb({ minLength: 2, maxLength: 8, zones: ZONES.slice(0, 3) }), fc.nat(), (members, pick) => {
        const i = pick % members.length;
        const a = buildRing(members, { n: 3, partitionBits: 12 });
        const moved = members.map((m, j) => (j === i ? { ...m, zone: m.zone === 'a' ? 'b' : 'a' } : m));
        const b = buildRing(moved, { n: 3, partitionBits: 12 });
        expect(b.checksum === a.checksum).toBe(sameRouting(a, b));
      }),
      { numRuns: RUNS },
    );
  });
});
