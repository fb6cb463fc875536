/**
 * Zone spreading and the exact definition of preference lists and full orders
 * (partitionBits 16 unless a test says otherwise).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildRing } from '../../../src/ring/index.js';
import { distinctZones, membersArb } from './arbitraries.js';

const RUNS = 50;
const ZONES = ['a', 'b', 'c', 'd', 'e'];

describe('zone spread', () => {
  it('every list has min(N, zones) distinct zones, N distinct members, and starts with the primary', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: ZONES.length }).chain((z) =>
          membersArb({ minLength: 1, maxLength: 12, zones: ZONES.slice(0, z), weights: [1, 2] }),
        ),
        fc.integer({ min: 1, max: 5 }),
        (members, n) => {
          const ring = buildRing(members, { n });
          // The same members in one zone with n = 1: the nominal rank order, whose winner is
          // the primary whenever it holds a replica, whatever the zones. With equal weights it
          // always does; with unequal ones the replica set comes from a race on effective
          // weights (see ring.ts) that leaves the winner out in a few per mille of partitions,
          // and then the primary is the set's best by nominal rank.
          const weighted = members.some((m) => m.weight !== members[0]!.weight);
          const flat = buildRing(
            members.map((m) => ({ ...m, zone: 'same' })),
            { n: 1 },
          );
          const zoneOf = new Map(members.map((m) => [m.id, m.zone]));
          const N = Math.min(n, members.length);
          const wantZones = Math.min(N, distinctZones(members));
          for (let p = 0; p < ring.partitions; p++) {
            const list = ring.preferenceList(p);
            const zones: string[] = [];
            let distinctMembers = 0;
            for (let i = 0; i < list.length; i++) {
              const id = list[i]!;
              if (list.indexOf(id) === i) distinctMembers++;
              const z = zoneOf.get(id)!;
              if (!zones.includes(z)) zones.push(z);
            }
            const ok =
              list.length === N &&
              distinctMembers === N &&
              zones.length === wantZones &&
              (list.includes(flat.preferenceList(p)[0]!)
                ? list[0] === flat.preferenceList(p)[0]
                : weighted && list[0] === flat.fullOrder(p).find((id) => list.includes(id)));
            if (!ok) expect({ p, list, zones }).toEqual({ p, list: `N=${N}, ${wantZones} zones, nominal primary` });
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});

/**
 * The definition, written the simple way: from the rank order (which is the full order of the
 * same members all in one zone), pick each not-yet-covered zone's best member until min(N,
 * zones) zones are covered, then the best remaining; full order = picks, then the rest by rank.
 * With unequal weights this is how the picks are *ordered* and the fallbacks follow, but the
 * set of picks comes from the replica race on effective weights (see ring.ts; its shares are
 * tested in ring-weight-share.test.ts): the reference then walks the actual set.
 */
function referenceFullOrder(rankOrder: readonly string[], zoneOf: Map<string, string>, n: number): string[] {
  const N = Math.min(n, rankOrder.length);
  const wantZones = Math.min(N, new Set(zoneOf.values()).size);
  const picked: string[] = [];
  const zones = new Set<string>();
  for (const id of rankOrder) {
    if (zones.size === wantZones) break;
    const z = zoneOf.get(id)!;
    if (!zones.has(z)) {
      zones.add(z);
      picked.push(id);
    }
  }
  for (const id of rankOrder) {
    if (picked.length === N) break;
    if (!picked.includes(id)) picked.push(id);
  }
  return [...picked, ...rankOrder.filter((id) => !picked.includes(id))];
}

describe('definition', () => {
  it('preference lists and full orders match a straightforward reference (partitionBits 10)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: ZONES.length }).chain((z) =>
          membersArb({ minLength: 1, maxLength: 60, zones: ZONES.slice(0, z), weights: [1, 1, 2, 0.5] }),
        ),
        fc.integer({ min: 1, max: 6 }),
        (members, n) => {
          const ring = buildRing(members, { n, partitionBits: 10 });
          const flat = buildRing(
            members.map((m) => ({ ...m, zone: 'same' })),
            { n: 1, partitionBits: 10 },
          );
          const zoneOf = new Map(members.map((m) => [m.id, m.zone]));
          const N = Math.min(n, members.length);
          const weighted = members.some((m) => m.weight !== members[0]!.weight);
          for (let p = 0; p < ring.partitions; p++) {
            const rank = flat.fullOrder(p);
            const set = ring.preferenceList(p);
            const expected = weighted
              ? [
                  ...referenceFullOrder(
                    rank.filter((id) => set.includes(id)),
                    zoneOf,
                    n,
                  ),
                  ...rank.filter((id) => !set.includes(id)),
                ]
              : referenceFullOrder(rank, zoneOf, n);
            const actual = ring.fullOrder(p);
            if (actual.join('\0') !== expected.join('\0')) expect({ p, actual }).toEqual({ p, actual: expected });
            const list = ring.preferenceList(p);
            if (list.join('\0') !== expected.slice(0, N).join('\0')) expect(list).toEqual(expected.slice(0, N));
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('rank orders of 3 equal nodes are uniform over the 6 permutations (partitionBits 14)', () => {
    fc.assert(
      fc.property(membersArb({ minLength: 3, maxLength: 3 }), (members) => {
        // One zone and n = 3 = members: the preference list is the whole rank order, so this
        // checks that second and third places (replicas, fallbacks) are balanced too.
        const ring = buildRing(members, { n: 3, partitionBits: 14 });
        const index = new Map(ring.members.map((m, i) => [m.id, i]));
        const counts = new Array<number>(27).fill(0);
        for (let p = 0; p < ring.partitions; p++) {
          const [a, b, c] = ring.preferenceList(p).map((id) => index.get(id)!);
          const key = a! * 9 + b! * 3 + c!;
          counts[key] = counts[key]! + 1;
        }
        const seen = counts.filter((c) => c > 0);
        expect(seen).toHaveLength(6);
        // Expected 16384/6 ≈ 2731 each, σ ≈ 48: allow 6σ.
        const sigma = Math.sqrt(((1 / 6) * (5 / 6)) / ring.partitions);
        for (const c of seen) expect(Math.abs(c / ring.partitions - 1 / 6)).toBeLessThan(6 * sigma);
      }),
      { numRuns: RUNS },
    );
  });
});

