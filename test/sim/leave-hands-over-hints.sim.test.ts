/**
 * A leaving node that holds hints for an owner that is down: the hints, and the copies they
 * point at, must not leave the cluster with it. It hands them to a stand-in, which parks them
 * in turn, and it goes only once none is left.
 */
import { describe, expect, it } from 'vitest';
import { receivers } from '../../src/handoff/transfer-plan.js';
import { buildRing } from '../../src/ring/ring.js';
import type { InternalHandler } from '../../src/transport/transport.js';
import { type SimCluster, withSimCluster } from './cluster-sim.js';

// Five nodes in zones a, b, c, a, b; N=3; anti-entropy hourly, so n3 learns of writes it
// missed only through hints. n3 gains no partition when n5 leaves (checked below), so the
// leave does not wait for n3 to come back; and n3 is alone in its zone, so a stand-in for it
// is the next spare in ring order, n5 for some keys.
const options = { nodes: 5 } as const;
const others = ['n1', 'n2', 'n4'];

/**
 * Writes keys replicated by n3 and not n5 through n2 while n3 is down, and returns those for
 * which n5 stood in for n3 (it holds a copy and a hint for each).
 */
async function hintsOnN5(c: SimCluster): Promise<string[]> {
  const ring = c.node('n1').c.membership.ring();
  expect(receivers(ring, ringWithout(c, 'n5'))).not.toContain('n3');
  const candidates = Array.from({ length: 400 }, (_, i) => `k${i}`)
    .filter((k) => {
      const pref = ring.preferenceList(ring.partitionOf(k));
      return pref.includes('n3') && !pref.includes('n5');
    })
    .slice(0, 40);
  await c.crash('n3');
  await c.runUntil('n3 seen down', () => [...others, 'n5'].every((id) => !c.node(id).c.membership.isUp('n3')), 20_000);
  for (const k of candidates) await c.put('n2', k, `v-${k}`, { w: 2 });
  const keys: string[] = [];
  for (const k of candidates) if ((await c.local('n5', k)).length > 0) keys.push(k);
  expect(keys.length).toBeGreaterThanOrEqual(5);
  expect(c.node('n5').c.replica.pendingHints).toBe(keys.length);
  return keys;
}

/** The ring `c` will have once `leaving` is gone. */
function ringWithout(c: SimCluster, leaving: string): ReturnType<typeof buildRing> {
  const ids = c.node('n1').c.membership.ring().members.map((m) => m.id).filter((id) => id !== leaving);
  return buildRing(
    ids.map((x) => ({ id: x, zone: c.node(x).init.zone, weight: 1 })),
    { n: 3, partitionBits: 8 },
  );
}

/** Hints parked on `ids` together. */
function hintsOn(c: SimCluster, ids: readonly string[]): number {
  return ids.reduce((sum, id) => sum + c.node(id).c.replica.pendingHints, 0);
}

/** n5 starts leaving; returns whether it has removed itself. */
function leaveN5(c: SimCluster): () => boolean {
  const n5 = c.node('n5').c;
  let left = false;
  n5.transfers.onLeft = () => {
    left = true;
  };
  expect(n5.membership.leave()).toBe(true);
  return () => left;
}

/**
 * n5, gone, exits 5 gossip rounds later (as node.ts does); n3 comes back; every key must
 * reach n3 (through hints only: no anti-entropy).
 */
async function n3GetsEveryKey(c: SimCluster, keys: readonly string[]): Promise<void> {
  const t0 = c.time.now();
  await c.runUntil('5 gossip rounds', () => c.time.now() - t0 >= 5 * 200, 5_000);
  await c.crash('n5');
  await c.runUntil('n5 gone everywhere', () => others.every((id) => c.node(id).c.membership.ring().members.length === 4), 30_000);
  await c.startNode(c.node('n3'));
  const missing = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const k of keys) if ((await c.local('n3', k)).join() !== `v-${k}`) out.push(k);
    return out;
  };
  await c.runUntil('n3 has every key', async () => (await missing()).length === 0, 30_000).catch(async (err: unknown) => {
    throw new Error(`${String(err)}; n3 lacks ${(await missing()).join(' ')}`);
  });
}

describe('a leaving node hands its hints over', () => {
  it('hints for an owner that is down reach it through another member after the leave', async () => {
    await withSimCluster({ seed: 241, ...options }, 5, async (c) => {
      const keys = await hintsOnN5(c);
      const before = hintsOn(c, others);
      const left = leaveN5(c);
      await c.runUntil('n5 left', left, 60_000);
      expect(c.node('n5').c.replica.pendingHints).toBe(0);
      // Other members now hold these hints too, and a copy for each.
      expect(hintsOn(c, others) - before).toBe(keys.length);
      await n3GetsEveryKey(c, keys);
    });
  });

  it('the leave waits while no stand-in takes the hints, then completes', async () => {
    await withSimCluster({ seed: 242, ...options }, 5, async (c) => {
      const keys = await hintsOnN5(c);
      // The others refuse replica writes: n5 can hand over its partitions (pulls) but not its hints.
      const restore: (() => void)[] = [];
      for (const id of others) {
        const node = c.node(id);
        const refusing = new Map<string, InternalHandler>(node.c.handlers);
        refusing.set('replica-write', () => Promise.reject(new Error('refused by the test')));
        refusing.set('hint-adopt', () => Promise.reject(new Error('refused by the test')));
        c.sim.net.register(node.address, refusing);
        restore.push(() => c.sim.net.register(node.address, node.c.handlers));
      }
      const left = leaveN5(c);
      // Long enough for every receiver to pull n5's partitions (the first test's leave takes
      // a few seconds).
      const t0 = c.time.now();
      await c.runUntil('20 s', () => c.time.now() - t0 >= 20_000, 25_000);
      expect(c.node('n5').c.transfers.pending).toBe(0);
      expect(left()).toBe(false);
      expect(c.node('n5').c.replica.pendingHints).toBe(keys.length);
      expect(c.node('n5').c.membership.member('n5')?.state).toBe('leaving');
      for (const r of restore) r();
      await c.runUntil('n5 left', left, 60_000);
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
