/**
 * Ownership transfer: cases where a join or a leave used to end with data missing from its
 * new owners, each provoked on purpose in a simulated cluster.
 */
import { describe, expect, it } from 'vitest';
import { RingkvError } from '../../src/errors.js';
import { TRANSFER_ROUTES } from '../../src/handoff/transfer.js';
import { buildRing } from '../../src/ring/ring.js';
import { type SimCluster, withSimCluster as withCluster } from './cluster-sim.js';

/** The ring `c` will have once `leaving` is gone (every other node of `c`). */
function ringWithout(c: SimCluster, leaving: string): ReturnType<typeof buildRing> {
  const ids = c.node('n1').c.membership.ring().members.map((m) => m.id).filter((id) => id !== leaving);
  return buildRing(
    ids.map((x) => ({ id: x, zone: c.node(x).init.zone, weight: 1 })),
    { n: 3, partitionBits: 8 },
  );
}

describe('a leave hands the leaving node\'s copies to their new owners', () => {
  // Four nodes, N=3, hinted handoff off: writes made while n1 was down land on the two other
  // owners only, and n1 learns of them only through anti-entropy (hourly here). n2 then
  // leaves. Each partition's new owner must get n2's copy: pulling from n1 (the first owner
  // that is up) instead gets nothing, and once n2 is gone a single copy of each of these
  // acknowledged W=2 writes is left.
  const options = { nodes: 4, zones: ['a', 'b', 'c', 'a'], hintedHandoff: false } as const;

  /**
   * Eight keys whose preference list starts with n1 and includes n2, written while n1 was
   * down (n1 is back when this returns). Each has a receiver (the one node not replicating
   * it now) and a third replica that keeps its copy (`holder`).
   */
  async function writeWhileN1IsDown(c: SimCluster): Promise<{ keys: string[]; receiver: (k: string) => string; holder: (k: string) => string }> {
    const ring = c.node('n1').c.membership.ring();
    const after = ringWithout(c, 'n2');
    const keys = Array.from({ length: 400 }, (_, i) => `k${i}`)
      .filter((k) => {
        const pref = ring.preferenceList(ring.partitionOf(k));
        return pref[0] === 'n1' && pref.includes('n2');
      })
      .slice(0, 8);
    expect(keys.length).toBe(8);
    const now = (k: string): readonly string[] => ring.preferenceList(ring.partitionOf(k));
    const receiver = (k: string): string => after.preferenceList(after.partitionOf(k)).find((id) => !now(k).includes(id)) as string;
    const holder = (k: string): string => now(k).find((id) => id !== 'n1' && id !== 'n2') as string;

    await c.crash('n1');
    await c.runUntil('n1 seen down', () => ['n2', 'n3', 'n4'].every((id) => !c.node(id).c.membership.isUp('n1')), 20_000);
    for (const k of keys) await c.put('n2', k, `v-${k}`, { w: 2 });
    await c.startNode(c.node('n1'));
    await c.waitConverged();
    for (const k of keys) {
      expect(await c.local('n1', k)).toEqual([]);
      expect(await c.local('n2', k)).toEqual([`v-${k}`]);
    }
    return { keys, receiver, holder };
  }

  /** n2 (leaving) hands over and removes itself; like node.ts, it exits 5 gossip rounds later. */
  async function n2Goes(c: SimCluster, left: () => boolean): Promise<void> {
    await c.runUntil('n2 left', left, 60_000);
    const t0 = c.time.now();
    await c.runUntil('5 gossip rounds', () => c.time.now() - t0 >= 5 * 200, 5_000);
    await c.crash('n2');
    await c.runUntil('n2 gone everywhere', () => ['n1', 'n3', 'n4'].every((id) => c.node(id).c.membership.ring().members.length === 3), 30_000);
  }

  /** n2 starts leaving; returns whether it has gone. */
  function startLeave(c: SimCluster): () => boolean {
    const n2 = c.node('n2').c;
    let left = false;
    n2.transfers.onLeft = () => {
      left = true;
    };
    expect(n2.membership.leave()).toBe(true);
    return () => left;
  }

  async function missingOnReceivers(c: SimCluster, keys: readonly string[], receiver: (k: string) => string): Promise<string[]> {
    const missing: string[] = [];
    for (const k of keys) if ((await c.local(receiver(k), k)).join() !== `v-${k}`) missing.push(`${k}@${receiver(k)}`);
    return missing;
  }

  it('a key only the leaving node and one other replica hold still reaches its new owner', async () => {
    await withCluster({ seed: 61, ...options }, 4, async (c) => {
      const { keys, receiver, holder } = await writeWhileN1IsDown(c);
      await n2Goes(c, startLeave(c));
      expect(await missingOnReceivers(c, keys, receiver)).toEqual([]);
      // What that costs a client: with the one other replica that held them down, a quorum
      // read (n1 and the receiver) must still find every key.
      for (const k of keys) {
        await c.crash(holder(k));
        expect((await c.get('n1', k, { r: 2 })).values).toEqual([`v-${k}`]);
        await c.startNode(c.node(holder(k)));
      }
    });
  });

  it('a leaving node that was down while its receivers pulled from others still hands them its copies', async () => {
    // n2 starts leaving and crashes before its receivers pull: they take its partitions from
    // n1 and n3 instead, and finish. When n2 is back it must not go before its own copies
    // have reached the receivers.
    await withCluster({ seed: 65, ...options }, 4, async (c) => {
      const { keys, receiver } = await writeWhileN1IsDown(c);
      const left = startLeave(c);
      await c.runUntil('n2 seen leaving', () => ['n1', 'n3', 'n4'].every((id) => c.node(id).c.membership.member('n2')?.state === 'leaving'), 20_000);
      await c.crash('n2');
      await c.runUntil('n2 seen down', () => ['n1', 'n3', 'n4'].every((id) => !c.node(id).c.membership.isUp('n2')), 20_000);
      // Long enough for every receiver to pull all it can from the others.
      const t0 = c.time.now();
      await c.runUntil('10 s', () => c.time.now() - t0 >= 10_000, 15_000);
      await c.startNode(c.node('n2'));
      const n2 = c.node('n2').c;
      expect(n2.membership.member('n2')?.state).toBe('leaving');
      let gone = false;
      n2.transfers.onLeft = () => {
        gone = true;
      };
      await n2Goes(c, () => gone || left());
      expect(await missingOnReceivers(c, keys, receiver)).toEqual([]);
    });
  });
});

/** Every key of `keys` gets a new value `v-<key>` (with the context of its old one); then `fresh` keys are written. */
async function rewriteAll(c: SimCluster, keys: readonly string[], fresh: readonly string[]): Promise<void> {
  for (const [i, k] of keys.entries()) {
    const via = `n${(i % 3) + 1}`;
    const { context } = await c.get(via, k);
    await c.put(via, k, `v-${k}`, context === undefined ? {} : { context });
  }
  for (const [i, k] of fresh.entries()) await c.put(`n${(i % 3) + 1}`, k, `v-${k}`);
}

/** Keys `id` replicates (by its own ring) that it does not hold with their latest value `v-<key>`. */
async function staleOn(c: SimCluster, id: string, keys: readonly string[]): Promise<string[]> {
  const ring = c.node(id).c.membership.ring();
  const stale: string[] = [];
  for (const k of keys) if (ring.preferenceList(ring.partitionOf(k)).includes(id) && (await c.local(id, k)).join() !== `v-${k}`) stale.push(k);
  return stale;
}

describe('a join that is called off and made again', () => {
  /** Start n4 joining a 3-node cluster holding `keys` (values `old-<key>`); return once it has pulled part of its share. */
  async function startJoin(c: SimCluster, keys: readonly string[]): Promise<void> {
    for (const [i, k] of keys.entries()) await c.put(`n${(i % 3) + 1}`, k, `old-${k}`);
    const n4 = c.node('n4');
    const received = async (): Promise<number> => (await n4.metrics.transferKeys.get()).values[0]?.value ?? 0;
    await c.startNode(n4);
    await c.runUntil('n4 pulled some keys', async () => (await received()) >= 150, 30_000);
    expect(n4.c.membership.member('n4')?.state).toBe('joining');
  }

  /** n4 joins again; returns what it lacks the moment it turns active (before any stray hand-off could mend it). */
  async function rejoin(c: SimCluster, keys: readonly string[]): Promise<string[]> {
    const n4 = c.node('n4');
    await c.startNode(n4);
    expect(n4.c.membership.member('n4')?.state).toBe('joining');
    await c.runUntil('n4 active', () => n4.c.membership.member('n4')?.state === 'active', 60_000);
    return staleOn(c, 'n4', keys);
  }

  // In both cases n4 is out of the cluster for a while, during which every key is rewritten
  // and new keys are added; nobody copies those writes to n4, which is no owner-to-be then.
  // n4 then joins again with the same data directory. The ring it moves to is the same as the
  // first time, so the transition has the same plan id: the saved cursors of the first join
  // must not be taken for this one's, or every key behind them stays stale on n4 (and every
  // key new since is missing) when it turns active.

  it('called off by the node itself (leave while joining): the second join pulls everything written since', async () => {
    await withCluster({ seed: 62, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 3, async (c) => {
      const keys = Array.from({ length: 600 }, (_, i) => `k${i}`);
      const fresh = Array.from({ length: 200 }, (_, i) => `f${i}`);
      await startJoin(c, keys);
      // POST /v1/cluster/leave on a joining node: removed at once; node.ts exits 5 gossip rounds later.
      expect(c.node('n4').c.membership.leave()).toBe(true);
      await c.runUntil('n4 removed everywhere', () => c.nodes.slice(0, 3).every((n) => n.c.membership.member('n4')?.state === 'removed'), 20_000);
      const t0 = c.time.now();
      await c.runUntil('5 gossip rounds', () => c.time.now() - t0 >= 5 * 200, 5_000);
      await c.crash('n4');
      await rewriteAll(c, keys, fresh);
      expect(await rejoin(c, [...keys, ...fresh])).toEqual([]);
    });
  });

  // n4 restarts as 'joining' with a newer incarnation that would outrank the removal: it
  // gossips its previous record until it hears from the cluster, learns it was removed, and
  // membership tells transfers to start the join over (onRejoin).
  it('removed by an admin while it was down: the second join pulls everything written since', async () => {
    await withCluster({ seed: 63, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 3, async (c) => {
      const keys = Array.from({ length: 600 }, (_, i) => `k${i}`);
      const fresh = Array.from({ length: 200 }, (_, i) => `f${i}`);
      await startJoin(c, keys);
      // n4 crashes mid-join, and the operator gives up on it: POST /v1/cluster/remove/n4.
      await c.crash('n4');
      await c.runUntil('n4 seen down', () => c.nodes.slice(0, 3).every((n) => !n.c.membership.isUp('n4')), 20_000);
      expect(c.node('n1').c.membership.remove('n4')).toBe(true);
      await c.runUntil('n4 removed everywhere', () => c.nodes.slice(0, 3).every((n) => n.c.membership.member('n4')?.state === 'removed'), 20_000);
      await rewriteAll(c, keys, fresh);
      expect(await rejoin(c, [...keys, ...fresh])).toEqual([]);
    });
  });
});

describe('a source that is up but cannot serve', () => {
  it('a join whose first-choice source fails every pull takes those partitions from another replica and completes', async () => {
    // n4 joins three nodes (N=3: each of them holds every key). n1 gossips normally, so it
    // is up, but every pull it is sent fails (a broken disk, say). n2 and n3 hold the same
    // partitions and serve: the join must not wait on n1 for good.
    await withCluster({ seed: 64, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 3, async (c) => {
      const keys = Array.from({ length: 150 }, (_, i) => `k${i}`);
      for (const [i, k] of keys.entries()) await c.put(`n${(i % 3) + 1}`, k, `v-${k}`);
      const n1 = c.node('n1');
      let refused = 0;
      const handlers = new Map(n1.c.handlers);
      handlers.set(TRANSFER_ROUTES.pull, async () => {
        refused++;
        throw new RingkvError('INTERNAL', 'pull failed on n1 (provoked by the test)');
      });
      c.sim.net.register(n1.address, handlers);
      const n4 = c.node('n4');
      await c.startNode(n4);
      await c.runUntil('n4 active everywhere', () => c.nodes.every((n) => n.c.membership.ring().members.length === 4), 60_000);
      expect(refused).toBeGreaterThan(0);
      expect(await staleOn(c, 'n4', keys)).toEqual([]);
    });
  });
});
