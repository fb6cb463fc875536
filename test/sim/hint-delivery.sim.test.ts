/**
 * Hinted handoff across membership changes, restarts and concurrent writes, in a simulated
 * cluster with anti-entropy off (an hour between exchanges): whatever reaches the owners here
 * came by hints, transfers and the stray cleaner.
 */
import { describe, expect, it } from 'vitest';
import { missingCopies, type SimCluster, withSimCluster as withCluster } from './cluster-sim.js';

/** Hints actually in `id`'s store (what hints.pending must report). */
async function storedHints(c: SimCluster, id: string): Promise<number> {
  let n = 0;
  for await (const _ of c.node(id).store.keys('hint')) n++;
  return n;
}

describe('hinted handoff across membership changes', () => {
  it('a write parked for an owner that loses the partition while down still reaches the new owner', async () => {
    await withCluster({ seed: 61, nodes: 5, zones: ['a', 'b', 'c', 'a', 'b'] }, 4, async (c) => {
      const live = ['n1', 'n2', 'n4'];
      await c.crash('n3');
      await c.runUntil('n3 seen down', () => live.every((id) => !c.node(id).c.membership.isUp('n3')), 20_000);
      const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
      for (const k of keys) await c.put(c.sim.pick(live), k, `v-${k}`);
      expect(live.reduce((s, id) => s + c.node(id).c.replica.pendingHints, 0)).toBeGreaterThan(0);

      // n5 joins while n3 is down, taking some of n3's partitions; then n3 comes back.
      await c.startNode(c.node('n5'));
      const all = [...live, 'n5'];
      await c.runUntil('n5 active', () => all.every((id) => c.node(id).c.membership.ring().members.some((m) => m.id === 'n5')), 60_000);
      await c.startNode(c.node('n3'));
      await c.waitConverged(60_000);
      await c.runUntil('hints drained', () => c.nodes.every((n) => n.c.replica.pendingHints === 0), 60_000);
      await c.runUntil('every owner holds every key', async () => (await missingCopies(c, keys, 'n1')).length === 0, 120_000);
      for (const n of c.nodes) expect(await storedHints(c, n.id)).toBe(0);
    });
  });

  it('a holder that restarts while the owner is down recounts its hints and still delivers them, newer writes included', async () => {
    await withCluster({ seed: 62, nodes: 3 }, 3, async (c) => {
      const live = ['n1', 'n2'];
      await c.crash('n3');
      await c.runUntil('n3 seen down', () => live.every((id) => !c.node(id).c.membership.isUp('n3')), 20_000);
      const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
      for (const k of keys) await c.put(c.sim.pick(live), k, `v-${k}`);
      const before = c.node('n1').c.replica.pendingHints;
      await c.restart('n1');
      expect(c.node('n1').c.replica.pendingHints).toBe(before);
      expect(await storedHints(c, 'n1')).toBe(before);
      await c.runUntil('n1 sees n3 down again', () => !c.node('n1').c.membership.isUp('n3'), 30_000);
      // Newer versions of the same keys re-park the hints after the restart.
      for (const k of keys) await c.put(c.sim.pick(live), k, `v-${k}`, { context: (await c.get('n1', k)).context ?? '' });
      await c.startNode(c.node('n3'));
      await c.runUntil('hints drained', () => c.nodes.every((n) => n.c.replica.pendingHints === 0), 60_000);
      for (const n of c.nodes) expect(await storedHints(c, n.id)).toBe(0);
      expect(await missingCopies(c, keys, 'n1')).toEqual([]);
    });
  });

  it('hints.pending matches the hints stored while writes re-park them and delivery clears them (the owner flapping)', async () => {
    await withCluster({ seed: 63, nodes: 3 }, 3, async (c) => {
      const live = ['n1', 'n2'];
      const keys = Array.from({ length: 12 }, (_, i) => `h${i}`);
      for (let round = 0; round < 6; round++) {
        if (round % 2 === 0) {
          await c.crash('n3');
          await c.runUntil('n3 seen down', () => live.every((id) => !c.node(id).c.membership.isUp('n3')), 20_000);
        } else await c.startNode(c.node('n3'));
        // Writes in flight together, through both holders, while delivery passes run.
        const writes = [];
        for (let j = 0; j < 40; j++) {
          const k = c.sim.pick(keys);
          writes.push(c.node(c.sim.pick(live)).c.coordinator.put(k, { value: new TextEncoder().encode(`v${round}-${j}`), contentType: 'text/plain', deleted: false }, '', { w: 1, timeoutMs: 1000 }).catch(() => undefined));
        }
        await c.settle(Promise.all(writes));
        for (const id of live) expect(c.node(id).c.replica.pendingHints).toBe(await storedHints(c, id));
      }
      await c.runUntil('hints drained', () => c.nodes.every((n) => n.c.replica.pendingHints === 0), 60_000);
      for (const n of c.nodes) expect(await storedHints(c, n.id)).toBe(0);
    });
  });
});
