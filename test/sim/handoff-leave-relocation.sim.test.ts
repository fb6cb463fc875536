/**
 * A leaving node hands the hints it holds for owners it cannot deliver to over to other
 * members (HintDelivery.relocate). These cases cover the ways that hand-over could lose a
 * hint, or keep the leave waiting for good: a stand-in whose hinted handoff is off, a
 * stand-in that is up but refuses writes, an owner that is up but refuses writes, and a
 * stand-in that is only joining.
 */
import { describe, expect, it } from 'vitest';
import type { CoreInit } from '../../src/node-core.js';
import { SimCluster, SimClusterNode } from './cluster-sim.js';
import { hintsOnN5, leaveN5, n3GetsEveryKey, others, refuse } from './leave-hints-fixture.js';

// The setting of leave-hints-fixture.ts.

/** Runs `body` on a started cluster of `nodes` (first `started` started), some nodes' init changed. */
async function withCluster(
  seed: number,
  body: (c: SimCluster) => Promise<void>,
  opts: { nodes?: number; started?: number; init?: Record<string, Partial<CoreInit>> } = {},
): Promise<void> {
  const c = new SimCluster({ seed, nodes: opts.nodes ?? 5 });
  for (const [id, change] of Object.entries(opts.init ?? {})) {
    const i = c.nodes.findIndex((n) => n.id === id);
    const n = c.nodes[i]!;
    c.nodes[i] = new SimClusterNode(n.id, n.address, { ...n.init, ...change });
  }
  try {
    await c.start(opts.started ?? c.nodes.length);
    await body(c);
  } catch (err) {
    throw new Error(`seed ${seed}: ${err instanceof Error ? err.stack : String(err)}`);
  } finally {
    await c.stop();
  }
}

describe('a leaving node hands its hints over without losing any', () => {
  it('to members whose hinted handoff is off, which keep them all the same', async () => {
    // n1 parks no hint a coordinator asks it to (--hinted-handoff false); a hint a leaving
    // node hands it is another matter: dropping it would lose the write for n3. n4 takes no
    // write for now, so the keys n4 would have held as a spare go to one of their owners.
    await withCluster(
      251,
      async (c) => {
        const keys = await hintsOnN5(c);
        const undo = refuse(c, 'n4', ['replica-write', 'replica-write-batch', 'hint-adopt']);
        const left = leaveN5(c);
        await c.runUntil('n5 left', left, 60_000);
        undo();
        await n3GetsEveryKey(c, keys);
      },
      { init: { n1: { hintedHandoff: false } } },
    );
  });

  it('to a member that holds no copy yet, so no write is left with fewer copies than it had', async () => {
    await withCluster(256, async (c) => {
      const keys = await hintsOnN5(c);
      const holders = async (ids: readonly string[], k: string): Promise<number> => {
        let n = 0;
        for (const id of ids) if ((await c.local(id, k)).join() === `v-${k}`) n++;
        return n;
      };
      const before = new Map<string, number>();
      for (const k of keys) before.set(k, await holders([...others, 'n5'], k));
      const left = leaveN5(c);
      await c.runUntil('n5 left', left, 60_000);
      // n3 is still down: each write must have as many copies on the members that stay as it
      // had with n5's among them.
      const fewer: string[] = [];
      for (const k of keys) {
        const after = await holders(others, k);
        if (after < before.get(k)!) fewer.push(`${k}: ${before.get(k)} -> ${after}`);
      }
      expect(fewer).toEqual([]);
      await n3GetsEveryKey(c, keys);
    });
  });

  it('waits while no member adopts the hints, then completes', async () => {
    await withCluster(255, async (c) => {
      const keys = await hintsOnN5(c);
      // The others take no hint: n5 can hand over its partitions (pulls) but not its hints.
      const undos = others.map((id) => refuse(c, id, ['replica-write', 'hint-adopt']));
      const left = leaveN5(c);
      const t0 = c.time.now();
      await c.runUntil('20 s', () => c.time.now() - t0 >= 20_000, 25_000);
      expect(c.node('n5').c.transfers.pending).toBe(0);
      expect(left()).toBe(false);
      expect(c.node('n5').c.replica.pendingHints).toBe(keys.length);
      expect(c.node('n5').c.membership.member('n5')?.state).toBe('leaving');
      for (const u of undos) u();
      await c.runUntil('n5 left', left, 60_000);
      await n3GetsEveryKey(c, keys);
    });
  });

  it('past a stand-in that is up but refuses writes', async () => {
    await withCluster(252, async (c) => {
      const keys = await hintsOnN5(c);
      // n1 still gossips, so it looks up, but it takes no write (its disk failed, say).
      const undo = refuse(c, 'n1', ['replica-write', 'replica-write-batch', 'hint-adopt']);
      const left = leaveN5(c);
      await c.runUntil('n5 left', left, 60_000);
      undo();
      await n3GetsEveryKey(c, keys);
    });
  });

  it('when the owner is up but refuses writes', async () => {
    await withCluster(253, async (c) => {
      const keys = await hintsOnN5(c);
      // n3 comes back, but takes no write: n5 cannot deliver to it, and must not wait for it.
      await c.startNode(c.node('n3'));
      const undo = refuse(c, 'n3', ['replica-write', 'replica-write-batch', 'hint-adopt']);
      await c.runUntil('n3 seen up', () => [...others, 'n5'].every((id) => c.node(id).c.membership.isUp('n3')), 20_000);
      const left = leaveN5(c);
      await c.runUntil('n5 left', left, 60_000);
      undo();
      await n3GetsEveryKey(c, keys);
    });
  });

  it('to members that are active, not to one that is only joining (it may go at once)', async () => {
    await withCluster(
      254,
      async (c) => {
        const keys = await hintsOnN5(c);
        // n6 joins and stays joining: no node serves pulls for now. The active members take no
        // hint for now either: n6 is the only member that could.
        const undos = [refuse(c, 'n5', ['xfer-pull']), ...others.map((id) => refuse(c, id, ['xfer-pull', 'replica-write', 'hint-adopt']))];
        await c.startNode(c.node('n6'));
        await c.runUntil('n6 joining everywhere', () => [...others, 'n5'].every((id) => c.node(id).c.membership.member('n6')?.state === 'joining' && c.node(id).c.membership.isUp('n6')), 20_000);
        const left = leaveN5(c);
        const t0 = c.time.now();
        await c.runUntil('10 s', () => c.time.now() - t0 >= 10_000, 15_000);
        // A joining node owns nothing, so a leave makes it go at once: with it whatever
        // hints it held.
        expect(c.node('n6').c.membership.leave()).toBe(true);
        await c.runUntil('n6 removed everywhere', () => others.every((id) => c.node(id).c.membership.member('n6')?.state === 'removed'), 20_000);
        await c.crash('n6');
        for (const u of undos) u();
        await c.runUntil('n5 left', left, 60_000);
        await n3GetsEveryKey(c, keys);
      },
      { nodes: 6, started: 5 },
    );
  });
});
