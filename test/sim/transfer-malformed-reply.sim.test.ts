/**
 * A source whose pull replies do not decode (a peer with a bug, or another version's format)
 * is a source whose pulls fail: after a few in a row its partitions are pulled from another
 * replica, and the other sources' pulls go on meanwhile. It must not fail the whole transfer
 * pass at the same point every time, which would keep the join waiting for good.
 */
import { describe, expect, it } from 'vitest';
import { TRANSFER_ROUTES } from '../../src/handoff/transfer.js';
import { missingCopies, withSimCluster } from './cluster-sim.js';

describe('a join whose source answers pulls with malformed replies', () => {
  it('pulls those partitions from another replica and completes', async () => {
    await withSimCluster({ seed: 261, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 3, async (c) => {
      const keys = Array.from({ length: 150 }, (_, i) => `k${i}`);
      for (const [i, k] of keys.entries()) await c.put(`n${(i % 3) + 1}`, k, `v-${k}`);
      // n1 answers every pull with a reply that claims more than it holds: "not done", then a
      // cursor of 100 bytes with three behind it.
      const n1 = c.node('n1');
      let answered = 0;
      const handlers = new Map(n1.c.handlers);
      handlers.set(TRANSFER_ROUTES.pull, async () => {
        answered++;
        return Uint8Array.of(0, 100, 1, 2, 3);
      });
      c.sim.net.register(n1.address, handlers);
      await c.startNode(c.node('n4'));
      await c.runUntil('n4 active everywhere', () => c.nodes.every((n) => n.c.membership.ring().members.length === 4), 90_000);
      expect(answered).toBeGreaterThan(0);
      await c.waitConverged();
      c.sim.net.register(n1.address, n1.c.handlers);
      expect(await missingCopies(c, keys, 'n1')).toEqual([]);
    });
  });
});
