/**
 * A leaving node that holds hints for an owner that is down: the hints, and the copies they
 * point at, must not leave the cluster with it. It hands them to a stand-in, which parks them
 * in turn, and it goes only once none is left (that it waits while nobody takes them is in
 * handoff-leave-relocation.sim.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { withSimCluster } from './cluster-sim.js';
import { hintsOn, hintsOnN5, leaveN5, n3GetsEveryKey, others } from './leave-hints-fixture.js';

// The setting of leave-hints-fixture.ts; 40 candidate keys.
const options = { nodes: 5 } as const;

describe('a leaving node hands its hints over', () => {
  it('hints for an owner that is down reach it through another member after the leave', async () => {
    await withSimCluster({ seed: 241, ...options }, 5, async (c) => {
      const keys = await hintsOnN5(c, 40);
      const before = hintsOn(c, others);
      const left = leaveN5(c);
      await c.runUntil('n5 left', left, 60_000);
      expect(c.node('n5').c.replica.pendingHints).toBe(0);
      // Other members now hold these hints too, and a copy for each.
      expect(hintsOn(c, others) - before).toBe(keys.length);
      await n3GetsEveryKey(c, keys);
    });
  });

  it('a leaving member is not chosen as a stand-in while another spare is up', async () => {
    await withSimCluster({ seed: 244, ...options }, 5, async (c) => {
      const ring = c.node('n1').c.membership.ring();
      const candidates = Array.from({ length: 400 }, (_, i) => `k${i}`)
        .filter((k) => {
          const pref = ring.preferenceList(ring.partitionOf(k));
          return pref.includes('n3') && !pref.includes('n5');
        })
        .slice(0, 40);
      await c.crash('n3');
      await c.runUntil('n3 seen down', () => [...others, 'n5'].every((id) => !c.node(id).c.membership.isUp('n3')), 20_000);
      leaveN5(c);
      await c.runUntil('n2 sees n5 leaving', () => c.node('n2').c.membership.member('n5')?.state === 'leaving', 20_000);
      for (const k of candidates) await c.put('n2', k, `v-${k}`, { w: 2 });
      // Without the leaving member, n1 or n4 stands in for n3 for each key (see hintsOnN5:
      // n5 is chosen for some of these keys when it is not leaving).
      for (const k of candidates) expect(await c.local('n5', k), k).toEqual([]);
      expect(hintsOn(c, others)).toBe(candidates.length);
    });
  });
});
