/**
 * Two members leaving at once that replicate the same partitions: each one's copies must reach
 * the new owners, not only the first one's.
 */
import { describe, expect, it } from 'vitest';
import { missingCopies, type SimCluster, withSimCluster } from './cluster-sim.js';

// Five nodes in zones a, b, c, a, b; N=3; hinted handoff off and anti-entropy hourly, so a
// replica that missed a write learns of it only from a transfer.
const options = { nodes: 5, hintedHandoff: false } as const;

/**
 * Keys replicated by n2 and then n3 (n2 first in the preference list's order), written while
 * n2 was down: n3 and a third owner hold them, n2 does not.
 */
async function writtenWhileN2WasDown(c: SimCluster): Promise<string[]> {
  const ring = c.node('n1').c.membership.ring();
  const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`)
    .filter((k) => {
      const pref = ring.preferenceList(ring.partitionOf(k));
      return pref.includes('n2') && pref.includes('n3') && pref.indexOf('n2') < pref.indexOf('n3');
    })
    .slice(0, 12);
  expect(keys.length).toBe(12);
  await c.crash('n2');
  await c.runUntil('n2 seen down', () => ['n1', 'n3', 'n4', 'n5'].every((id) => !c.node(id).c.membership.isUp('n2')), 20_000);
  for (const k of keys) await c.put('n1', k, `v-${k}`, { w: 2 });
  await c.startNode(c.node('n2'));
  await c.waitConverged();
  for (const k of keys) {
    expect(await c.local('n2', k)).toEqual([]);
    expect(await c.local('n3', k)).toEqual([`v-${k}`]);
  }
  return keys;
}

describe('two members leaving together', () => {
  it('hand over the copies each of them holds, not only the first one\'s', async () => {
    await withSimCluster({ seed: 243, ...options }, 5, async (c) => {
      const keys = await writtenWhileN2WasDown(c);
      const gone = new Set<string>();
      for (const id of ['n2', 'n3']) {
        c.node(id).c.transfers.onLeft = () => gone.add(id);
        expect(c.node(id).c.membership.leave()).toBe(true);
      }
      await c.runUntil('n2 and n3 left', () => gone.size === 2, 120_000);
      // Like node.ts: exit 5 gossip rounds after the removal.
      const t0 = c.time.now();
      await c.runUntil('5 gossip rounds', () => c.time.now() - t0 >= 5 * 200, 5_000);
      await c.crash('n2');
      await c.crash('n3');
      await c.runUntil('n2 and n3 gone everywhere', () => ['n1', 'n4', 'n5'].every((id) => c.node(id).c.membership.ring().members.length === 3), 30_000);
      expect(await missingCopies(c, keys, 'n1')).toEqual([]);
    });
  });
});
