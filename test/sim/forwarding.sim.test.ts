/**
 * Writes through a node that is not one of the key's replicas (five nodes, N=3): the node
 * forwards the write to an owner, and each way that forwarding can fail is provoked here.
 */
import { describe, expect, it } from 'vitest';
import { RingkvError } from '../../src/errors.js';
import { withForwardedKey } from './cluster-sim.js';


describe('a write forwarded by a node that is not a replica', () => {
  it('skips an owner that refuses connections and forwards to the next one', async () => {
    await withForwardedKey(41, async (c, key, owners) => {
      const [first, ...rest] = owners as [string, ...string[]];
      await c.crash(first);
      // n1 has not noticed yet: it still tries `first`, which refuses the connection.
      expect(c.node('n1').c.membership.isUp(first)).toBe(true);
      const delivered = c.sim.net.delivered;
      await c.put('n1', key, 'v1');
      expect(c.sim.net.delivered).toBeGreaterThan(delivered);
      for (const id of rest) expect(await c.local(id, key)).toEqual(['v1']);
      expect(await c.local('n1', key)).toEqual([]);
      // The owner that was down gets it by hinted handoff once it is back.
      await c.startNode(c.node(first));
      await c.runUntil('hinted copy delivered', async () => (await c.local(first, key)).join() === 'v1', 30_000);
    });
  });

  it('with every owner refusing connections, keeps the write itself and hands it to each owner later', async () => {
    await withForwardedKey(42, async (c, key, owners) => {
      for (const id of owners) await c.crash(id);
      expect(owners.every((id) => c.node('n1').c.membership.isUp(id))).toBe(true);
      // No owner stored it: a 503 that names 0 of 2, and the write held here for the owners.
      const err = await c.put('n1', key, 'v1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RingkvError);
      expect((err as RingkvError).code).toBe('QUORUM_FAILED');
      expect((err as RingkvError).details).toEqual({ answered: 0, needed: 2 });
      expect(await c.local('n1', key)).toEqual(['v1']);
      expect(c.node('n1').c.replica.pendingHints).toBe(owners.length);
      for (const id of owners) await c.startNode(c.node(id));
      await c.runUntil('hints drained', () => c.node('n1').c.replica.pendingHints === 0, 30_000);
      for (const id of owners) expect(await c.local(id, key)).toEqual(['v1']);
    });
  });

  it('an owner that never answers the forwarded write makes it a 503 of unknown outcome, not a retry elsewhere', async () => {
    await withForwardedKey(43, async (c, key, owners) => {
      const first = owners[0] as string;
      // Requests from n1 to `first` are dropped; `first` still gossips to n1, so it looks up.
      c.sim.net.cut(c.node('n1').address, c.node(first).address, true);
      const t0 = c.time.now();
      const err = await c.put('n1', key, 'v1', { timeoutMs: 1000 }).catch((e: unknown) => e);
      expect(c.node('n1').c.membership.isUp(first)).toBe(true);
      expect(err).toBeInstanceOf(RingkvError);
      expect((err as RingkvError).code).toBe('QUORUM_FAILED');
      expect((err as RingkvError).details).toEqual({ answered: 0, needed: 2 });
      // It waited for the forwarded write's own deadline (the request's 1000 ms plus a margin).
      expect(c.time.now() - t0).toBeGreaterThanOrEqual(1000);
      // A timed-out forward may have been applied, so it was not sent to another owner too.
      for (const id of owners) expect(await c.local(id, key)).toEqual([]);
      expect(await c.local('n1', key)).toEqual([]);
    });
  });
});
