/**
 * receivePlan with two members leaving together that share partitions: each partition is
 * pulled from every leaving owner, and is unsourced while any of them is down.
 */
import { describe, expect, it } from 'vitest';
import { receivePlan } from '../../../src/handoff/transfer-plan.js';
import { buildRing } from '../../../src/ring/ring.js';
import type { Ring } from '../../../src/ring/types.js';

const ringOf = (ids: string[], n: number): Ring =>
  buildRing(
    ids.map((id) => ({ id, zone: id, weight: 1 })),
    { n, partitionBits: 8 },
  );

describe('receivePlan: two leaving members', () => {
  // N=3 on six members; d and e leave.
  const current = ringOf(['a', 'b', 'c', 'd', 'e', 'f'], 3);
  const pending = ringOf(['a', 'b', 'c', 'f'], 3);
  const all = Array.from({ length: current.partitions }, (_, p) => p);
  const shared = all.filter((p) => current.preferenceList(p).includes('d') && current.preferenceList(p).includes('e'));

  /** Partitions `self` gains, each with the sources the plan gives it. */
  function sourcesOf(self: string, isUp: (id: string) => boolean, only?: ReadonlySet<number>, covered?: (s: string, p: number) => boolean) {
    const { bySource, unsourced } = receivePlan(current, pending, self, isUp, only, covered);
    const sources = new Map<number, string[]>();
    for (const [source, partitions] of bySource) for (const p of partitions) sources.set(p, [...(sources.get(p) ?? []), source].sort());
    return { sources, unsourced };
  }

  it('pulls a partition both replicate from both of them', () => {
    expect(shared.length).toBeGreaterThan(0);
    let checked = 0;
    for (const self of ['a', 'b', 'c', 'f']) {
      const { sources, unsourced } = sourcesOf(self, () => true);
      expect(unsourced).toEqual([]);
      for (const p of shared) {
        if (!sources.has(p)) continue;
        expect(sources.get(p), `partition ${p} for ${self}`).toEqual(['d', 'e']);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(0);
  });

  it('pulls from the one that is up and leaves the partition unsourced for the other', () => {
    for (const self of ['a', 'b', 'c', 'f']) {
      const { sources, unsourced } = sourcesOf(self, (id) => id !== 'e');
      for (const p of shared) {
        if (!sources.has(p) && !unsourced.includes(p)) continue;
        expect(sources.get(p)).toEqual(['d']);
        expect(unsourced).toContain(p);
      }
    }
  });

  it('a re-plan leaves out the pulls that are kept', () => {
    const self = ['a', 'b', 'c', 'f'].find((id) => sourcesOf(id, () => true).sources.size > 0) as string;
    const { sources } = sourcesOf(self, () => true);
    const mine = shared.filter((p) => sources.has(p));
    expect(mine.length).toBeGreaterThan(0);
    // d's pulls are kept; e's partitions are planned again now that e is back.
    const again = sourcesOf(self, () => true, new Set(mine), (s) => s === 'd');
    for (const p of mine) expect(again.sources.get(p)).toEqual(['e']);
    expect(again.unsourced).toEqual([]);
  });
});
