/**
 * Coordinator behaviour that was once wrong, each provoked on a simulated cluster: a node
 * that knows no ring answering as if it were the whole cluster, a PUT that waits on a stalled
 * local disk far past its timeout, and a read's 503 that undercounts the replicas that answered.
 */
import { describe, expect, it, vi } from 'vitest';
import { RingkvError } from '../../src/errors.js';
import { newerButUnreadable, SimCluster, withSimCluster } from './cluster-sim.js';

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<RingkvError> {
  const err = await p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RingkvError);
  return err as RingkvError;
}

describe('a node that has not joined its cluster yet (no ring)', () => {
  it('neither acknowledges a w=2 write it alone holds nor answers reads from its own copy', async () => {
    const c = new SimCluster({ seed: 51, nodes: 2 });
    try {
      // n2's seed is n1, which is not up: n2 stays 'joining', and a joining node's ring (active
      // and leaving members only) is empty. A new node whose seeds are still starting is here.
      await c.startNode(c.node('n2'));
      await c.step(2_000);
      expect(c.node('n2').c.membership.ring().members).toEqual([]);

      // Nothing is known of the key's replicas, so no W can be met: a 503, and nothing kept
      // here (it would be a copy on a node that owns nothing).
      const put = await rejection(c.put('n2', 'k', 'v', { w: 2 }));
      expect(put.code).toBe('QUORUM_FAILED');
      expect(put.details).toMatchObject({ answered: 0 });
      expect(put.message).toContain('has not joined its cluster yet');
      expect(await c.local('n2', 'k')).toEqual([]);

      // A read cannot say "not found" for a key the cluster may well hold.
      const get = await rejection(c.settle(c.node('n2').c.coordinator.get('k', { r: 2, timeoutMs: 1000 })));
      expect(get.code).toBe('QUORUM_FAILED');
    } finally {
      await c.stop();
    }
  });
});

describe('the PUT timeout bounds the coordinator’s own write too', () => {
  it('a PUT whose local write stalls answers 503 within its timeout, and the write still reaches the replicas', async () => {
    await withSimCluster({ seed: 52, nodes: 3 }, 3, async (c) => {
      // n1's disk stalls for 10 s on every write (a LevelDB write stall, say).
      const store = c.node('n1').store;
      const batch = store.batch.bind(store);
      const stall = vi.spyOn(store, 'batch').mockImplementation(async (ops) => {
        await c.sim.time.sleep(10_000);
        return batch(ops);
      });
      const t0 = c.sim.elapsed();
      const err = await rejection(c.put('n1', 'k', 'v', { w: 2, timeoutMs: 1000 }));
      expect(err.code).toBe('QUORUM_FAILED');
      expect(c.sim.elapsed() - t0).toBeLessThan(1_500);
      // Once the disk catches up the write is not left on n1 alone.
      stall.mockRestore();
      await c.runUntil('the stalled write replicated', async () => (await c.local('n2', 'k')).join() === 'v' && (await c.local('n3', 'k')).join() === 'v', 30_000);
    });
  });
});

describe('a read that fails after its quorum answered', () => {
  it('reports every replica that answered, not only those read whole', async () => {
    await withSimCluster({ seed: 53, nodes: 3 }, 3, async (c) => {
      const ctx = await c.put('n1', 'k', 'old', { w: 3 });
      // n2 holds a newer version, and answers version reads but fails whole ones.
      await newerButUnreadable(c, 'n2', 'k', ctx);
      // r=3 through n1: n1 (its own copy) and n3 (the same version) answered in full, n2 only
      // its version. The read must fail (n2's value is missing), saying 2 of 3 answered.
      const err = await rejection(c.settle(c.node('n1').c.coordinator.get('k', { r: 3, timeoutMs: 1000 })));
      expect(err.details).toEqual({ answered: 2, needed: 3 });
    });
  });
});
