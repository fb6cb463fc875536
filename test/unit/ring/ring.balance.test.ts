/**
 * Ownership balance and weights (partitionBits 16 unless a test says otherwise). Each run builds
 * whole rings, so run counts are chosen to keep the file well under a minute.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildRing } from '../../../src/ring/index.js';
import { maxOverMean, membersArb, shares } from './arbitraries.js';

const RUNS = 50;
const ZONES = ['a', 'b', 'c', 'd', 'e'];

describe('balance', () => {
  it('3–16 equal-weight nodes: max/mean primary share <= 1.10; replica share too in 1 or all-distinct zones', () => {
    fc.assert(
      fc.property(
        membersArb({ minLength: 3, maxLength: 16 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 5 }),
        (members, distinct, n) => {
          const placed = members.map((m, i) => ({ ...m, zone: distinct ? `zone-${i}` : 'one' }));
          const ring = buildRing(placed, { n });
          const s = shares(ring);
          expect(maxOverMean(s.primary)).toBeLessThanOrEqual(1.1);
          expect(maxOverMean(s.replica)).toBeLessThanOrEqual(1.1);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('shares sum to 1 and partitionsOf agrees with the preference lists', () => {
    fc.assert(
      fc.property(
        membersArb({ minLength: 1, maxLength: 8, zones: ZONES.slice(0, 3), weights: [0.5, 1, 3] }),
        fc.integer({ min: 1, max: 5 }),
        (members, n) => {
          const ring = buildRing(members, { n, partitionBits: 10 });
          const s = shares(ring);
          expect(s.primary.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
          expect(s.replica.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
          for (const { id } of ring.members) {
            const expected: number[] = [];
            for (let p = 0; p < ring.partitions; p++) if (ring.preferenceList(p).includes(id)) expected.push(p);
            expect(ring.partitionsOf(id)).toEqual(expected);
            expect(ring.replicaShare(id)).toBe(expected.length / (ring.partitions * Math.min(n, members.length)));
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('weights', () => {
  it('a weight-2 node owns 2x ± 10% of the mean primary share of the weight-1 nodes', () => {
    fc.assert(
      fc.property(
        membersArb({ minLength: 3, maxLength: 16, zones: ZONES }),
        fc.nat(),
        (members, pick) => {
          const heavy = members[pick % members.length]!.id;
          const ring = buildRing(
            members.map((m) => ({ ...m, weight: m.id === heavy ? 2 : 1 })),
            { n: 3 },
          );
          const light = ring.members.filter((m) => m.id !== heavy).map((m) => ring.primaryShare(m.id));
          const ratio = ring.primaryShare(heavy) / (light.reduce((a, b) => a + b, 0) / light.length);
          expect(ratio).toBeGreaterThanOrEqual(1.8);
          expect(ratio).toBeLessThanOrEqual(2.2);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('any weights: each primary share is weight / total weight (within 6 binomial σ)', () => {
    fc.assert(
      fc.property(
        membersArb({ minLength: 2, maxLength: 16, zones: ZONES, weights: [0.25, 0.5, 1, 1.5, 3, 10] }),
        (members) => {
          const ring = buildRing(members, { n: 3 });
          const total = members.reduce((a, m) => a + m.weight, 0);
          for (const m of members) {
            const p = m.weight / total;
            const sigma = Math.sqrt((p * (1 - p)) / ring.partitions);
            expect(Math.abs(ring.primaryShare(m.id) - p)).toBeLessThanOrEqual(6 * sigma + 1e-9);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});

