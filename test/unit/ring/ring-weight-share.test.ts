/**
 * Weights make replica shares proportional, not just primary shares (src/ring/effective-weights.ts),
 * while equal-weight rings stay exactly what version 1 of the ring built.
 *
 * Shares are compared with their targets within 5 binomial σ: a ring is a fixed function of its
 * members, but across member sets each member's partition count behaves like a binomial draw
 * around its target. Version 1 misses the weighted targets by tens to hundreds of σ.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { replicaTargets } from '../../../src/ring/effective-weights.js';
import { buildRing, type Ring, type RingMember } from '../../../src/ring/index.js';
import { membersArb } from './arbitraries.js';

const RUNS = 50;
const ZONES = ['a', 'b', 'c', 'd', 'e'];

const m = (id: string, zone: string, weight = 1): RingMember => ({ id, zone, weight });

/** Each member's target fraction of preference lists (the oracle: water-filled proportional shares). */
function targetsOf(ring: Ring): Map<string, number> {
  const zoneIndex = new Map<string, number>();
  const zoneOf = Uint16Array.from(ring.members, (x) => {
    if (!zoneIndex.has(x.zone)) zoneIndex.set(x.zone, zoneIndex.size);
    return zoneIndex.get(x.zone)!;
  });
  const { targets } = replicaTargets({
    weights: Float64Array.from(ring.members, (x) => x.weight),
    zoneOf,
    zones: zoneIndex.size,
    replicas: Math.min(ring.n, ring.members.length),
  });
  return new Map(ring.members.map((x, i) => [x.id, targets[i]!]));
}

/** Fraction of partitions whose preference list holds the member. */
function inclusion(ring: Ring, id: string): number {
  return ring.partitionsOf(id).length / ring.partitions;
}

/** Members whose inclusion is more than 5 binomial σ off its target (empty when all are on target). */
function offTarget(ring: Ring): string[] {
  const out: string[] = [];
  for (const [id, target] of targetsOf(ring)) {
    const got = inclusion(ring, id);
    const sigma = Math.sqrt((target * (1 - target)) / ring.partitions);
    if (Math.abs(got - target) > 5 * sigma + 1e-12) {
      out.push(`${id}: in ${got.toFixed(4)} of lists, target ${target.toFixed(4)}`);
    }
  }
  return out;
}

/**
 * The list order, written the simple way: walk the set in nominal rank order, first each
 * member of a zone not yet covered until Z zones are, then the others in the same order.
 */
function nominalPickOrder(set: readonly string[], nominal: readonly string[], zoneOf: Map<string, string>, Z: number) {
  const ordered = nominal.filter((id) => set.includes(id));
  const first: string[] = [];
  const zones = new Set<string>();
  for (const id of ordered) {
    const z = zoneOf.get(id)!;
    if (zones.size < Z && !zones.has(z)) {
      zones.add(z);
      first.push(id);
    }
  }
  return [...first, ...ordered.filter((id) => !first.includes(id))];
}

function meanOf(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

describe('targets (the oracle)', () => {
  const input = (weights: number[], zoneOf: number[], replicas: number) => ({
    weights: Float64Array.from(weights),
    zoneOf: Uint16Array.from(zoneOf),
    zones: new Set(zoneOf).size,
    replicas,
  });

  it('are N × weight / Σ weights when nothing caps them', () => {
    const { targets } = replicaTargets(input([2, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0], 3));
    expect(Array.from(targets)).toEqual([6 / 7, 3 / 7, 3 / 7, 3 / 7, 3 / 7, 3 / 7].map((x) => expect.closeTo(x, 12)));
  });

  it('cap a member at every list and share the rest in proportion', () => {
    const { targets } = replicaTargets(input([10, 1, 1, 1, 1], [0, 0, 0, 0, 0], 3));
    expect(Array.from(targets)).toEqual([1, 0.5, 0.5, 0.5, 0.5].map((x) => expect.closeTo(x, 12)));
  });

  it('zones >= N: cap a zone at one replica per list, split inside it by weight', () => {
    // Zones of weight 2, 4, 6, 8 (n = 3): the weight-8 zone would get 1.2 replicas per list.
    const { targets } = replicaTargets(input([1, 2, 3, 4, 1, 2, 3, 4], [0, 1, 2, 3, 0, 1, 2, 3], 3));
    const zone = (z: number) => targets[z]! + targets[z + 4]!;
    expect(zone(3)).toBeCloseTo(1, 12);
    expect(targets[3]).toBeCloseTo(0.5, 12);
    // The other zones share 2 per list as 2 : 4 : 6.
    expect([zone(0), zone(1), zone(2)]).toEqual([1 / 3, 2 / 3, 1].map((x) => expect.closeTo(x, 12)));
  });

  it('zones < N: raise a zone to exactly one replica per list, the rest share what is left', () => {
    // n = 3 over 2 zones: zone 1 (weight 0.5 of 7.5) would get 0.2 replicas per list.
    const { targets } = replicaTargets(input([1, 1, 1, 1, 1, 2, 0.5], [0, 0, 0, 0, 0, 0, 1], 3));
    expect(targets[6]).toBeCloseTo(1, 12);
    expect(Array.from(targets.subarray(0, 6))).toEqual([2, 2, 2, 2, 2, 4].map((x) => expect.closeTo(x / 7, 12)));
  });
});

describe('replica shares follow weights (n = 3, 65,536 partitions)', () => {
  it('one weight-2 node among five weight-1 nodes holds twice their data', () => {
    const ring = buildRing([m('h', 'z', 2), ...[1, 2, 3, 4, 5].map((i) => m(`l${i}`, 'z'))], { n: 3 });
    expect(offTarget(ring)).toEqual([]);
    const ratio = ring.replicaShare('h') / meanOf([1, 2, 3, 4, 5].map((i) => ring.replicaShare(`l${i}`)));
    expect(ratio).toBeGreaterThan(1.95); // version 1: 1.57
    expect(ratio).toBeLessThan(2.05);
  });

  it('one weight-4 node among nine weight-1 nodes holds four times their data', () => {
    const light = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => `l${i}`);
    const ring = buildRing([m('h', 'z', 4), ...light.map((id) => m(id, 'z'))], { n: 3 });
    expect(offTarget(ring)).toEqual([]);
    const ratio = ring.replicaShare('h') / meanOf(light.map((id) => ring.replicaShare(id)));
    expect(ratio).toBeGreaterThan(3.9); // version 1: 2.78
    expect(ratio).toBeLessThan(4.1);
  });

  it('weights 1, 2, 3 twice over 2 zones: proportional', () => {
    const ring = buildRing(
      [1, 2, 3, 1, 2, 3].map((w, i) => m(`n${i}`, `z${i % 2}`, w)),
      { n: 3 },
    );
    expect(offTarget(ring)).toEqual([]);
    for (const x of ring.members) expect(targetsOf(ring).get(x.id)).toBeCloseTo(x.weight / 4, 12);
  });

  it('a node that would need more than every partition holds every one; the others share the rest', () => {
    const ring = buildRing([m('big', 'z', 10), ...[1, 2, 3, 4].map((i) => m(`s${i}`, 'z'))], { n: 3 });
    expect(ring.partitionsOf('big')).toHaveLength(ring.partitions);
    expect(offTarget(ring)).toEqual([]);
  });

  it('zones >= N: a zone that would need more than one replica per list holds one, split by weight', () => {
    const ring = buildRing(
      [1, 2, 3, 4, 1, 2, 3, 4].map((w, i) => m(`n${i}`, `z${i % 4}`, w)),
      { n: 3 },
    );
    expect(offTarget(ring)).toEqual([]);
    expect(inclusion(ring, 'n3') + inclusion(ring, 'n7')).toBe(1);
  });

  it('zones < N: the members of an under-weight zone take one replica per list, and only one', () => {
    const ring = buildRing([...[1, 1, 1, 1, 1, 2].map((w, i) => m(`a${i}`, 'a', w)), m('b0', 'b', 0.5)], { n: 3 });
    expect(ring.partitionsOf('b0')).toHaveLength(ring.partitions);
    expect(offTarget(ring)).toEqual([]);
  });

  it('any weights and zones: every member within 5σ of its target (partitionBits 14)', () => {
    fc.assert(
      fc.property(
        membersArb({ minLength: 2, maxLength: 14, zones: ZONES, weights: [0.5, 1, 2, 4] }).filter((ms) =>
          ms.some((x) => x.weight !== ms[0]!.weight),
        ),
        fc.integer({ min: 2, max: 5 }),
        (members, n) => {
          expect(offTarget(buildRing(members, { n, partitionBits: 14 }))).toEqual([]);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('rings whose nominal weights already meet the targets are version 1 rings', () => {
  // Version 1's checksums, lists and full orders, recorded before effective weights existed.
  // If these change, existing clusters move data on upgrade.
  const pins: [string, RingMember[], number, number, string, Record<number, string[]>][] = [
    [
      'equal weights, 3 zones',
      [m('a', 'z1'), m('b', 'z2'), m('c', 'z3'), m('d', 'z1'), m('e', 'z2')],
      3,
      16,
      '2fd76e8ae679bcbe3827472394dda465',
      { 0: ['e', 'c', 'a', 'b', 'd'], 777: ['b', 'd', 'c', 'e', 'a'], 65535: ['b', 'a', 'c', 'd', 'e'] },
    ],
    [
      'equal weights, 3 zones, n = 2',
      [m('a', 'z1'), m('b', 'z2'), m('c', 'z3'), m('d', 'z1'), m('e', 'z2')],
      2,
      12,
      'e51ef0883b625479743a1608f59213ab',
      { 0: ['e', 'c', 'b', 'a', 'd'], 777: ['b', 'd', 'e', 'a', 'c'], 4095: ['d', 'e', 'c', 'b', 'a'] },
    ],
    [
      'equal weights, one zone',
      Array.from({ length: 10 }, (_, i) => m(`node-${i}`, 'z')),
      3,
      16,
      'e3db9052ac5c2f72096815c83afc46d7',
      {
        0: ['node-5', 'node-3', 'node-8', 'node-6', 'node-1', 'node-4', 'node-9', 'node-2', 'node-0', 'node-7'],
        65535: ['node-6', 'node-5', 'node-9', 'node-8', 'node-2', 'node-0', 'node-3', 'node-1', 'node-7', 'node-4'],
      },
    ],
    [
      'equal weights 2, 3 × 3 zones, n = 5',
      Array.from({ length: 9 }, (_, i) => m(`n${i}`, `z${i % 3}`, 2)),
      5,
      10,
      '5946e3a0bb0cce5e7ba42c97f3d2ef0f',
      {
        0: ['n2', 'n4', 'n0', 'n7', 'n1', 'n3', 'n6', 'n5', 'n8'],
        1023: ['n3', 'n7', 'n8', 'n6', 'n2', 'n1', 'n0', 'n4', 'n5'],
      },
    ],
    [
      'equal weights 0.5, 2 zones',
      Array.from({ length: 12 }, (_, i) => m(`10.0.0.${i}:8081`, i % 2 ? 'east' : 'west', 0.5)),
      3,
      16,
      '311c011d5cfb487ffbd1438049909cbe',
      {},
    ],
    [
      // Zones of unequal size: a zone's members hold more than their weight's share here, and
      // an unequal-weight ring would be corrected; equal weights must keep version 1's ring.
      'equal weights 3, 7 members in 5 zones',
      Array.from({ length: 7 }, (_, i) => m(`host-${i}`, `rack-${i % 5}`, 3)),
      3,
      16,
      '07e3f37f2c43655e5c2bab956d1f08e0',
      { 0: ['host-5', 'host-4', 'host-1', 'host-2', 'host-3', 'host-0', 'host-6'] },
    ],
    [
      'weights 1, 2, 3 over exactly n = 3 zones',
      [1, 2, 3, 1, 2, 3].map((w, i) => m(`n${i}`, `z${i % 3}`, w)),
      3,
      16,
      '9c3ce45feef17c7a389f07ff6fbb8956',
      { 0: ['n2', 'n4', 'n0', 'n1', 'n5', 'n3'], 65535: ['n4', 'n3', 'n2', 'n5', 'n1', 'n0'] },
    ],
  ];
  for (const [name, members, n, partitionBits, checksum, orders] of pins) {
    it(`${name}: checksum and full orders as version 1`, () => {
      const ring = buildRing(members, { n, partitionBits });
      expect(ring.checksum).toBe(checksum);
      for (const [p, order] of Object.entries(orders)) expect(ring.fullOrder(Number(p))).toEqual(order);
    });
  }
});

describe('version 2 rings', () => {
  it('pins the weighted ring of one weight-2 among five weight-1 nodes', () => {
    const ring = buildRing([m('h', 'z', 2), ...[1, 2, 3, 4, 5].map((i) => m(`l${i}`, 'z'))], { n: 3 });
    expect(ring.checksum).toBe('3ab974dac0f891564cfdbcb7cae3399f');
    // Version 1 had ['l3', 'l4', 'l2', 'h', ...] and ['l4', 'l1', 'l2', 'h', ...]: h now takes a
    // replica there; the primaries are the same.
    expect(ring.fullOrder(5)).toEqual(['l3', 'l4', 'h', 'l2', 'l5', 'l1']);
    expect(ring.fullOrder(11)).toEqual(['l4', 'l1', 'h', 'l2', 'l3', 'l5']);
    expect(ring.fullOrder(0)).toEqual(['h', 'l2', 'l4', 'l1', 'l5', 'l3']);
  });

  it('do not depend on the input order of the members, nor on zone names', () => {
    fc.assert(
      fc.property(
        membersArb({ minLength: 2, maxLength: 12, zones: ZONES, weights: [0.5, 1, 3] }).chain((ms) =>
          fc.tuple(fc.constant(ms), fc.shuffledSubarray(ms, { minLength: ms.length, maxLength: ms.length })),
        ),
        fc.integer({ min: 2, max: 4 }),
        ([members, shuffled], n) => {
          const a = buildRing(members, { n, partitionBits: 12 });
          const b = buildRing(
            shuffled.map((x) => ({ ...x, zone: `renamed-${x.zone}` })),
            { n, partitionBits: 12 },
          );
          expect(b.checksum).toBe(a.checksum);
          for (const p of [0, 1, 777, 4095]) expect(b.fullOrder(p)).toEqual(a.fullOrder(p));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('spread zones, start with the best member by nominal rank, and fall back in nominal rank order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: ZONES.length }).chain((z) =>
          membersArb({ minLength: 2, maxLength: 14, zones: ZONES.slice(0, z), weights: [0.5, 1, 2, 4] }),
        ),
        fc.integer({ min: 2, max: 5 }),
        (members, n) => {
          const ring = buildRing(members, { n, partitionBits: 12 });
          // One zone and n = 1: the nominal rank order (version 1's, by weight).
          const nominal = buildRing(
            members.map((x) => ({ ...x, zone: 'same' })),
            { n: 1, partitionBits: 12 },
          );
          const zoneOf = new Map(members.map((x) => [x.id, x.zone]));
          const N = Math.min(n, members.length);
          const Z = Math.min(N, new Set(zoneOf.values()).size);
          for (let p = 0; p < ring.partitions; p++) {
            const list = ring.preferenceList(p);
            const order = nominal.fullOrder(p);
            const prefixZones = new Set(list.slice(0, Z).map((id) => zoneOf.get(id)));
            const ok =
              list.length === N &&
              new Set(list).size === N &&
              prefixZones.size === Z &&
              list.join('\0') === nominalPickOrder(list, order, zoneOf, Z).join('\0') &&
              ring.fullOrder(p).slice(N).join('\0') === order.filter((id) => !list.includes(id)).join('\0');
            if (!ok) expect({ p, list, order }).toEqual({ p, list: `N=${N}, ${Z} zones first, nominal order` });
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("keep version 1's primaries in all but a few per mille of partitions, so primary shares stay weight / Σ", () => {
    const cases: [RingMember[], number][] = [
      [[m('a', 'z', 2), m('b', 'z', 1), m('c', 'z', 2)], 2],
      [[m('a', 'z', 3), m('b', 'z', 3), m('c', 'z', 1), m('d', 'z', 1), m('e', 'z', 1)], 2],
      [[1, 2, 3, 4, 1, 2, 3, 4].map((w, i) => m(`n${i}`, `z${i % 4}`, w)), 3],
      [[0.5, 1, 2, 4, 8].map((w, i) => m(`n${i}`, 'z', w)), 3],
    ];
    for (const [members, n] of cases) {
      const ring = buildRing(members, { n, partitionBits: 14 });
      // n = 1 has nothing to fit: its list is version 1's primary.
      const winner = buildRing(members, { n: 1, partitionBits: 14 });
      let differ = 0;
      for (let p = 0; p < ring.partitions; p++) if (ring.preferenceList(p)[0] !== winner.preferenceList(p)[0]) differ++;
      expect(differ / ring.partitions).toBeLessThan(0.005);
      const total = members.reduce((a, x) => a + x.weight, 0);
      for (const x of members) {
        const share = x.weight / total;
        const sigma = Math.sqrt((share * (1 - share)) / ring.partitions);
        expect(Math.abs(ring.primaryShare(x.id) - share)).toBeLessThan(6 * sigma);
      }
    }
  });
});

describe('a member joining a weighted cluster', () => {
  /** Replica slots gained by the newcomer and by the others, as fractions of all slots. */
  function movement(before: Ring, after: Ring, added: string) {
    let toAdded = 0;
    let amongOthers = 0;
    let primariesElsewhere = 0;
    for (let p = 0; p < before.partitions; p++) {
      const a = before.preferenceList(p);
      const b = after.preferenceList(p);
      if (a[0] !== b[0] && b[0] !== added) primariesElsewhere++;
      for (const id of b) {
        if (a.includes(id)) continue;
        if (id === added) toAdded++;
        else amongOthers++;
      }
    }
    const slots = before.partitions * before.preferenceList(0).length;
    return {
      toAdded: toAdded / slots,
      amongOthers: amongOthers / slots,
      primariesElsewhere: primariesElsewhere / before.partitions,
    };
  }

  it('one weight-2 and five weight-1 nodes, plus a weight-1 node: it gets 1/8; ~1% moves among the others', () => {
    const existing = [m('h', 'z', 2), ...[1, 2, 3, 4, 5].map((i) => m(`l${i}`, 'z'))];
    const after = buildRing([...existing, m('new', 'z')], { n: 3 });
    const moved = movement(buildRing(existing, { n: 3 }), after, 'new');
    expect(offTarget(after)).toEqual([]);
    expect(moved.toAdded).toBeCloseTo(1 / 8, 2); // version 1: 0.131
    expect(moved.amongOthers).toBeLessThan(0.015);
    expect(moved.primariesElsewhere).toBe(0);
  });

  it('any weighted cluster: the newcomer reaches its target; the others reshuffle less than it gains (bits 14)', () => {
    fc.assert(
      fc.property(
        membersArb({ minLength: 3, maxLength: 13, zones: ZONES.slice(0, 4), weights: [0.5, 1, 2, 4] }).filter((ms) =>
          ms.some((x) => x.weight !== ms[0]!.weight),
        ),
        (all) => {
          const existing = all.slice(0, -1);
          const added = all[all.length - 1]!;
          const after = buildRing(all, { n: 3, partitionBits: 14 });
          const moved = movement(buildRing(existing, { n: 3, partitionBits: 14 }), after, added.id);
          expect(offTarget(after)).toEqual([]);
          expect(moved.amongOthers).toBeLessThanOrEqual(moved.toAdded);
          expect(moved.primariesElsewhere).toBeLessThan(0.005);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
