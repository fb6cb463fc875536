/**
 * planReplicas: a member that is leaving stands in for a down owner only when no other spare
 * is up (it would have to hand the hint on before it may go).
 */
import { describe, expect, it } from 'vitest';
import { planReplicas } from '../../../src/coordinator/placement.js';

const order = ['a', 'b', 'c', 'd', 'e', 'f'];
const zones: Record<string, string> = { a: 'z1', b: 'z2', c: 'z3', d: 'z3', e: 'z1', f: 'z2' };

describe('planReplicas with leaving members', () => {
  it('passes over a leaving spare for a staying one, even one in a covered zone', () => {
    // c (z3) is down; d is the first spare and in c's zone, but leaving; e and f stay.
    const slots = planReplicas({
      preferenceList: ['a', 'b', 'c'],
      fullOrder: () => order,
      self: 'a',
      isUp: (id) => id !== 'c',
      useFallbacks: true,
      zoneOf: (id) => zones[id],
      leaving: (id) => id === 'd',
    });
    expect(slots[2]).toEqual({ owner: 'c', target: 'e', hintFor: true, suspect: false });
  });

  it('uses a leaving spare when it is the only one up', () => {
    const slots = planReplicas({
      preferenceList: ['a', 'b', 'c'],
      fullOrder: () => order,
      self: 'a',
      isUp: (id) => id === 'a' || id === 'b' || id === 'd',
      useFallbacks: true,
      zoneOf: (id) => zones[id],
      leaving: (id) => id === 'd',
    });
    expect(slots[2]).toEqual({ owner: 'c', target: 'd', hintFor: true, suspect: false });
  });

  it('two down owners: staying spares first, then the leaving one', () => {
    const slots = planReplicas({
      preferenceList: ['a', 'b', 'c'],
      fullOrder: () => order,
      self: 'a',
      isUp: (id) => id === 'a' || id === 'd' || id === 'f',
      useFallbacks: true,
      leaving: (id) => id === 'd',
    });
    expect(slots.map((s) => s.target)).toEqual(['a', 'f', 'd']);
  });
});
