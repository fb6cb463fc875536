import { describe, expect, it } from 'vitest';
import { planId, receivePlan, receivers } from '../../../src/handoff/transfer-plan.js';
import { buildRing } from '../../../src/ring/ring.js';
import type { Ring } from '../../../src/ring/types.js';

const ringOf = (ids: string[], n: number): Ring =>
  buildRing(
    ids.map((id) => ({ id, zone: id, weight: 1 })),
    { n, partitionBits: 6 },
  );

describe('receivePlan', () => {
  const current = ringOf(['a', 'b', 'c', 'd'], 2);
  const pending = ringOf(['a', 'b', 'c', 'd', 'e'], 2);
  const gained = Array.from({ length: pending.partitions }, (_, p) => p).filter(
    (p) => pending.preferenceList(p).includes('e') && !current.preferenceList(p).includes('e'),
  );

  it('takes each gained partition from the first current owner that is up', () => {
    expect(gained.length).toBeGreaterThan(3);
    const down = new Set(['a']);
    const { bySource, unsourced, total } = receivePlan(current, pending, 'e', (id) => !down.has(id));
    expect(total).toBe(gained.length);
    expect(unsourced).toEqual([]);
    const planned = [...bySource.values()].flat().sort((x, y) => x - y);
    expect(planned).toEqual(gained);
    for (const [source, partitions] of bySource)
      for (const p of partitions) expect(source).toBe(current.preferenceList(p).find((id) => !down.has(id)));
    expect(bySource.has('a')).toBe(false);
  });

  it('leaves a partition unsourced when none of its current owners is up', () => {
    const { bySource, unsourced, total } = receivePlan(current, pending, 'e', () => false);
    expect(bySource.size).toBe(0);
    expect(unsourced).toEqual(gained);
    expect(total).toBe(gained.length);
  });

  it('with `only`, plans just those partitions, and still counts every one it receives', () => {
    const only = new Set(gained.slice(0, 3));
    only.add(-1); // not a gained partition: ignored
    const { bySource, unsourced, total } = receivePlan(current, pending, 'e', (id) => id !== 'b', only);
    expect(total).toBe(gained.length);
    expect([...[...bySource.values()].flat(), ...unsourced].sort((x, y) => x - y)).toEqual(gained.slice(0, 3));
  });

  it('plans nothing without a transition, and names every receiver of one', () => {
    expect(receivePlan(current, current, 'a', () => true).total).toBe(0);
    expect(receivers(current, current)).toEqual([]);
    expect(receivers(current, pending)).toContain('e');
    expect(planId(current, pending)).not.toBe(planId(pending, current));
  });
});
