/**
 * The ring and replica placement: node ids whose murmur3 hashes collide, and stand-ins for down
 * owners taken from a zone the key's other targets are not in.
 */
import { describe, expect, it } from 'vitest';
import { planReplicas } from '../../../src/coordinator/placement.js';
import { buildRing, keyHash } from '../../../src/ring/index.js';

describe('member ids whose murmur3 hashes collide', () => {
  // Real 32-bit murmur3 collisions among ordinary id schemes (found by enumerating
  // node-0..node-300000, n0..n300000 and 10.0.x.y:8081).
  const twins: [string, string][] = [
    ['node-53119', 'node-70603'],
    ['n40665', 'n93112'],
    ['10.0.2.254:8081', '10.0.144.191:8081'],
  ];

  for (const [a, b] of twins) {
    it(`${a} / ${b}: each of 5 equal nodes gets ~1/5 of the primaries, and neither always outranks the other`, () => {
      expect(keyHash(a)).toBe(keyHash(b)); // the premise
      const members = [a, b, 'x1', 'x2', 'x3'].map((id) => ({ id, zone: 'z', weight: 1 }));
      const ring = buildRing(members, { n: 3, partitionBits: 12 });
      let aFirst = 0;
      for (let p = 0; p < ring.partitions; p++) {
        const order = ring.fullOrder(p);
        if (order.indexOf(a) < order.indexOf(b)) aFirst++;
      }
      const sigma = Math.sqrt((0.2 * 0.8) / ring.partitions);
      expect(Math.abs(ring.primaryShare(b) - 0.2)).toBeLessThanOrEqual(6 * sigma);
      expect(aFirst / ring.partitions).toBeGreaterThan(0.4);
      expect(aFirst / ring.partitions).toBeLessThan(0.6);
    });
  }
});

describe('sloppy-quorum fallbacks and zones', () => {
  it('a down owner is replaced by an up node of a zone not already holding a replica, when one exists', () => {
    // 3 zones x 3 nodes, n = 3: every preference list spans the 3 zones.
    const members = Array.from({ length: 9 }, (_, i) => ({ id: `n${i}`, zone: `z${i % 3}`, weight: 1 }));
    const zoneOf = new Map(members.map((m) => [m.id, m.zone]));
    const ring = buildRing(members, { n: 3, partitionBits: 10 });
    const down = 'n0';
    let affected = 0;
    let sameZone = 0;
    for (let p = 0; p < ring.partitions; p++) {
      const preferenceList = ring.preferenceList(p);
      if (!preferenceList.includes(down)) continue;
      affected++;
      const slots = planReplicas({
        preferenceList,
        fullOrder: () => ring.fullOrder(p),
        self: preferenceList.find((id) => id !== down)!,
        isUp: (id) => id !== down,
        useFallbacks: true,
        zoneOf: (id) => zoneOf.get(id),
      });
      const zones = new Set(slots.map((s) => zoneOf.get(s.target)));
      // n3 and n6 (zone z0, like n0) are up, so 3 zones are possible.
      if (zones.size < 3) sameZone++;
    }
    expect(affected).toBeGreaterThan(0);
    expect({ sameZone, affected }).toEqual({ sameZone: 0, affected });
  });
});
