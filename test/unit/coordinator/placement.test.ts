import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planReplicas } from '../../../src/coordinator/placement.js';

const order = ['a', 'b', 'c', 'd', 'e'];

describe('planReplicas', () => {
  it('uses the owners when all are up', () => {
    const slots = planReplicas({ preferenceList: ['a', 'b', 'c'], fullOrder: () => order, self: 'a', isUp: () => true, useFallbacks: true });
    expect(slots).toEqual([
      { owner: 'a', target: 'a', hintFor: false, suspect: false },
      { owner: 'b', target: 'b', hintFor: false, suspect: false },
      { owner: 'c', target: 'c', hintFor: false, suspect: false },
    ]);
  });

  it('ranks the other members only when an owner is down', () => {
    let ranked = 0;
    const fullOrder = (): readonly string[] => {
      ranked++;
      return order;
    };
    planReplicas({ preferenceList: ['a', 'b', 'c'], fullOrder, self: 'a', isUp: () => true, useFallbacks: true });
    expect(ranked).toBe(0);
    const slots = planReplicas({ preferenceList: ['a', 'b', 'c'], fullOrder, self: 'a', isUp: (id) => id !== 'c', useFallbacks: true });
    expect(ranked).toBe(1);
    expect(slots[2]).toEqual({ owner: 'c', target: 'd', hintFor: true, suspect: false });
  });

  it('replaces a down owner by the next up node beyond the list', () => {
    const slots = planReplicas({ preferenceList: ['a', 'b', 'c'], fullOrder: () => order, self: 'a', isUp: (id) => id !== 'b' && id !== 'd', useFallbacks: true });
    expect(slots[1]).toEqual({ owner: 'b', target: 'e', hintFor: true, suspect: false });
  });

  it('still asks a suspected owner when no spare node is up, or fallbacks are off', () => {
    const threeNodes = planReplicas({ preferenceList: ['a', 'b', 'c'], fullOrder: () => ['a', 'b', 'c'], self: 'a', isUp: (id) => id !== 'c', useFallbacks: true });
    expect(threeNodes[2]).toEqual({ owner: 'c', target: 'c', hintFor: false, suspect: true });
    const off = planReplicas({ preferenceList: ['a', 'b', 'c'], fullOrder: () => order, self: 'a', isUp: (id) => id !== 'c', useFallbacks: false });
    expect(off[2]).toEqual({ owner: 'c', target: 'c', hintFor: false, suspect: true });
  });

  it('treats the coordinating node as up and never uses a node twice', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }), fc.constantFrom(...order), (ups, self) => {
        const isUp = (id: string): boolean => ups[order.indexOf(id)] === true;
        const slots = planReplicas({ preferenceList: ['a', 'b', 'c'], fullOrder: () => order, self, isUp, useFallbacks: true });
        const targets = slots.map((s) => s.target).filter((t) => t !== undefined);
        expect(new Set(targets).size).toBe(targets.length);
        for (const s of slots) if (s.target && s.target !== s.owner) expect(s.target === self || isUp(s.target)).toBe(true);
        for (const s of slots) if (s.owner === self) expect(s.target).toBe(self);
      }),
      { numRuns: 500 },
    );
  });
});
