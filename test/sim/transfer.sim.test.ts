import { describe, expect, it } from 'vitest';
import { SimCluster } from './cluster-sim.js';

/** Every key is held locally by every owner in the current ring of `via`. */
async function fullyReplicated(c: SimCluster, keys: string[], via = 'n1'): Promise<string[]> {
  const ring = c.node(via).c.membership.ring();
  const missing: string[] = [];
  for (const k of keys)
    for (const owner of ring.preferenceList(ring.partitionOf(k))) {
      const got = await c.local(owner, k);
      if (got.length !== 1 || got[0] !== `v-${k}`) missing.push(`${k}@${owner}`);
    }
  return missing;
}

describe('ownership transfer on a simulated cluster', () => {
  it('a fourth node joins under load without a failed request and ends up holding every key it replicates', async () => {
    const c = new SimCluster({ seed: 11, nodes: 4, zones: ['a', 'b', 'c', 'a'] });
    try {
      await c.start(3);
      const keys: string[] = [];
      for (let i = 0; i < 150; i++) {
        keys.push(`k${i}`);
        await c.put(`n${(i % 3) + 1}`, `k${i}`, `v-k${i}`);
      }
      await c.startNode(c.node('n4'));
      expect(c.node('n4').c.membership.member('n4')?.state).toBe('joining');
      // Keep reading and writing while n4 joins; every request must succeed.
      let i = 150;
      // What /v1/cluster reports as transfers.pending on n4: partitions it still has to receive.
      let mostPending = 0;
      await c.runUntil(
        'n4 active everywhere',
        async () => {
          mostPending = Math.max(mostPending, c.node('n4').c.transfers.pending);
          const k = `k${i++}`;
          keys.push(k);
          await c.put(c.sim.pick(['n1', 'n2', 'n3']), k, `v-${k}`);
          const probe = c.sim.pick(keys);
          expect((await c.get(c.sim.pick(['n1', 'n2', 'n3', 'n4']), probe)).values).toEqual([`v-${probe}`]);
          return c.nodes.every((n) => n.c.membership.ring().members.length === 4);
        },
        60_000,
      );
      expect(mostPending).toBeGreaterThan(0);
      expect(mostPending).toBeLessThanOrEqual(c.node('n4').c.membership.ring().partitions);
      expect(c.node('n4').c.transfers.pending).toBe(0);
      await c.waitConverged();
      expect(await fullyReplicated(c, keys)).toEqual([]);
      // n4 owns roughly its share, and every key it owns is there.
      const ring = c.node('n1').c.membership.ring();
      expect(ring.replicaShare('n4')).toBeGreaterThan(0.15);
    } finally {
      await c.stop();
    }
  });

  it('a node leaves: it hands everything over, removes itself, and every key stays fully replicated', async () => {
    const c = new SimCluster({ seed: 12, nodes: 4, zones: ['a', 'b', 'c', 'a'] });
    try {
      await c.start(4);
      const keys = Array.from({ length: 150 }, (_, i) => `k${i}`);
      for (const k of keys) await c.put('n1', k, `v-${k}`);
      let left = false;
      const n2 = c.node('n2').c;
      n2.transfers.onLeft = () => {
        left = true;
      };
      expect(n2.membership.leave()).toBe(true);
      // n2's transfers.pending: partitions its receivers have yet to report complete.
      let mostPending = 0;
      await c.runUntil(
        'n2 left',
        async () => {
          mostPending = Math.max(mostPending, n2.transfers.pending);
          const probe = c.sim.pick(keys);
          expect((await c.get(c.sim.pick(['n1', 'n3', 'n4']), probe)).values).toEqual([`v-${probe}`]);
          return left && ['n1', 'n3', 'n4'].every((id) => c.node(id).c.membership.ring().members.length === 3);
        },
        60_000,
      );
      expect(mostPending).toBeGreaterThan(0);
      expect(n2.transfers.pending).toBe(0);
      await c.crash('n2');
      expect(await fullyReplicated(c, keys)).toEqual([]);
    } finally {
      await c.stop();
    }
  });
});

describe('ownership transfer resumes after a restart', () => {
  it('a joining node that crashes mid-transfer resumes from its saved cursors instead of starting over', async () => {
    const c = new SimCluster({ seed: 13, nodes: 4, zones: ['a', 'b', 'c', 'a'] });
    try {
      await c.start(3);
      const keys = Array.from({ length: 600 }, (_, i) => `k${i}`);
      for (const [i, k] of keys.entries()) await c.put(`n${(i % 3) + 1}`, k, `v-${k}`);
      const n4 = c.node('n4');
      const received = async (): Promise<number> => (await n4.metrics.transferKeys.get()).values[0]?.value ?? 0;
      await c.startNode(n4);
      // Let it pull part of its data, then crash it.
      await c.runUntil('n4 pulled some keys', async () => (await received()) >= 150, 30_000);
      expect(n4.c.membership.member('n4')?.state).toBe('joining');
      const before = await received();
      await c.crash('n4');
      await c.startNode(n4);
      expect(n4.c.membership.member('n4')?.state).toBe('joining');
      await c.runUntil('n4 active everywhere', () => c.nodes.every((n) => n.c.membership.ring().members.length === 4), 60_000);
      await c.waitConverged();
      expect(await fullyReplicated(c, keys)).toEqual([]);
      // What n4 owns, it got once, plus at most one batch (64) re-sent after the restart;
      // starting over would re-send everything pulled before the crash (>= 150).
      const ring = c.node('n1').c.membership.ring();
      const owned = keys.filter((k) => ring.preferenceList(ring.partitionOf(k)).includes('n4')).length;
      const total = await received();
      expect(before).toBeLessThan(owned);
      expect(total).toBeLessThanOrEqual(owned + 64);
    } finally {
      await c.stop();
    }
  });
});
