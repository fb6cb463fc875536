/**
 * Model-based test: random client histories against three simulated replicas. The model
 * records, for every acknowledged write, which earlier writes its client had seen (its
 * causal history). After a full sync, the surviving siblings must be exactly the writes no
 * other write's client had seen: nothing acknowledged is lost unless a context superseded
 * it, and nothing superseded lingers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeObject, encodeObject, isDeleted, MAX_SIBLINGS, versionDigest } from '../../../src/version/index.js';
import { actorArb, dotKey, dotKeys, opArb, simulate } from './sim.js';

const actorsArb = fc.oneof(
  fc.constant(['n1.1', 'n2.1', 'n3.1']),
  fc.uniqueArray(actorArb, { minLength: 3, maxLength: 3 }),
);

describe('model: no acknowledged, unsuperseded write is lost', () => {
  it('after any history and a full sync, survivors are exactly the unsuperseded writes', () => {
    fc.assert(
      fc.property(
        actorsArb,
        fc.array(opArb, { minLength: 5, maxLength: 60, size: 'max' }),
        fc.array(fc.nat(2), { minLength: 3, maxLength: 6 }),
        (actors, ops, order) => {
          const sim = simulate(ops, actors);
          for (const o of sim.objects) if (o) expect(o.siblings.length).toBeLessThanOrEqual(MAX_SIBLINGS);
          const final = sim.fullSync([...order, 0, 1, 2]);

          // Every replica converged to the same object (structurally, digest and bytes too).
          for (const o of sim.objects) {
            expect(o).toEqual(final);
            if (o && final) expect(versionDigest(o)).toBe(versionDigest(final));
          }
          if (final === undefined) {
            expect(sim.writes.size).toBe(0);
            return;
          }
          expect(decodeObject(encodeObject(final))).toEqual(final);

          // Survivors are exactly the maximal writes of the causal model.
          expect(dotKeys(final)).toEqual([...sim.maximalWrites()].sort());

          // Each survivor carries its write's contents.
          for (const s of final.siblings) {
            const w = sim.writes.get(dotKey(s.dot))!;
            expect(s.deleted).toBe(w.deleted);
            expect(s.value).toEqual(w.deleted ? new Uint8Array(0) : w.value);
          }
          expect(isDeleted(final)).toBe(final.siblings.every((s) => sim.writes.get(dotKey(s.dot))!.deleted));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a client that always reads before writing, through any replicas, leaves one sibling', () => {
    // Reads through all replicas see everything, so each write supersedes all before it.
    const step = fc.record({ replica: fc.nat(2), del: fc.boolean(), syncs: fc.array(fc.tuple(fc.nat(2), fc.nat(2)), { maxLength: 3 }) });
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 20 }), (steps) => {
        const sim = simulate([]);
        for (const s of steps) {
          sim.read(0, [0, 1, 2], false);
          sim.write(0, s.replica, true, s.del);
          for (const [from, to] of s.syncs) sim.sync(from, to);
        }
        const final = sim.fullSync()!;
        expect(final.siblings).toHaveLength(1);
        expect(sim.maximalWrites().size).toBe(1);
      }),
      { numRuns: 1000 },
    );
  });
});
