/**
 * Real processes with hinted handoff off: a node that missed writes while it was down is
 * brought up to date by Merkle anti-entropy alone, with no client reading the keys.
 */
import { describe, expect, it } from 'vitest';
import { clusterView, startCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/ports.js';

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ').pop());
  return sum;
}

describe('anti-entropy between real processes', () => {
  it('repairs a node that missed writes, with hinted handoff off and no client reads', async () => {
    // A verify sweep over the whole ring every two rounds (the default takes a day).
    const c = await startCluster({
      nodes: 3,
      args: ['--hinted-handoff', 'false', '--anti-entropy-interval-ms', '500', '--anti-entropy-verify-period-ms', '1000'],
    });
    try {
      const [n1, n2, n3] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0], (typeof c.nodes)[0]];
      await n3.kill('SIGKILL');
      await waitFor('n3 down', async () => (await clusterView(n1.url)).members.find((m) => m.id === 'n3')?.status === 'down', 20_000);
      const keys = Array.from({ length: 300 }, (_, i) => `aae-${i}`);
      for (const [i, k] of keys.entries()) {
        const res = await fetch(`${(i % 2 ? n1 : n2).url}/v1/kv/${k}`, { method: 'PUT', body: `v-${k}` });
        expect(res.status).toBe(204);
      }
      expect(((await (await fetch(`${n1.url}/v1/cluster`)).json()) as { hints: { pending: number } }).hints.pending).toBe(0);
      await n3.restart();
      // Anti-entropy writes each missed key to n3 once; n1 and n2 already agree with each other.
      await waitFor(
        'anti-entropy repaired every missed key',
        async () => (await metric(n1.url, 'ringkv_antientropy_keys_repaired_total')) + (await metric(n2.url, 'ringkv_antientropy_keys_repaired_total')) + (await metric(n3.url, 'ringkv_antientropy_keys_repaired_total')) >= keys.length,
        60_000,
        250,
      );
      const repaired =
        (await metric(n1.url, 'ringkv_antientropy_keys_repaired_total')) +
        (await metric(n2.url, 'ringkv_antientropy_keys_repaired_total')) +
        (await metric(n3.url, 'ringkv_antientropy_keys_repaired_total'));
      // About as many keys moved as diverged, not the data set again and again.
      expect(repaired).toBeLessThanOrEqual(keys.length * 1.1);
      // The verify sweep ran with the period given: half the 65536 partitions a round.
      await waitFor('n1 swept its partitions', async () => (await metric(n1.url, 'ringkv_antientropy_swept_partitions_total')) >= 65_536, 30_000, 250);
      // A sound store: no leaf disagreed with it.
      expect(await metric(n1.url, 'ringkv_antientropy_leaf_resets_total')).toBe(0);
      // Node-to-node traffic is counted: the writes n1 coordinated, its exchanges' replies.
      expect(await metric(n1.url, 'ringkv_internal_bytes_total')).toBeGreaterThan(300 * 10);
      // Only n3 can answer now: every key must be in its own store.
      await n1.kill('SIGKILL');
      await n2.kill('SIGKILL');
      await waitFor('n3 sees the others down', async () => (await clusterView(n3.url)).members.filter((m) => m.status === 'down').length === 2, 20_000);
      for (const k of keys) {
        const res = await fetch(`${n3.url}/v1/kv/${k}?r=1`);
        expect(res.status).toBe(200);
        expect(await res.text()).toBe(`v-${k}`);
      }
    } finally {
      await c.stop();
    }
  }, 180_000);
});
