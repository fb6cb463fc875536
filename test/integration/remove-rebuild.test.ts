/**
 * SPEC §2: `POST /v1/cluster/remove/{id}` drops a dead member for good, and "its replicas are
 * rebuilt from the survivors". Four real processes at N=3: after a node dies and is removed,
 * every key it replicated must again have three copies, on the three survivors. Each copy is
 * read from the survivor's own store through the internal replica-read route, so no client
 * read (and no read repair) takes part in the rebuild.
 */
import { describe, expect, it } from 'vitest';
import { decodeReadReply, encodeString } from '../../src/coordinator/messages.js';
import { clusterView, startCluster, type TestNode } from '../helpers/cluster.js';
import { waitQuorumReady } from '../helpers/cluster-ready.js';
import { waitFor } from '../helpers/ports.js';
import { parseExposition } from '../helpers/prometheus.js';

const dec = new TextDecoder();

/** Keys anti-entropy has repaired on `node` (its /metrics counter). */
async function repairedBy(node: TestNode): Promise<number> {
  const { samples } = parseExposition(await (await fetch(`${node.url}/metrics`)).text());
  return samples.filter((s) => s.name === 'ringkv_antientropy_keys_repaired_total').reduce((sum, s) => sum + s.value, 0);
}

/** The value of `key` in `node`'s own store (its single live sibling), or undefined. */
async function localValue(node: TestNode, secret: string, key: string): Promise<string | undefined> {
  const res = await fetch(`${node.url}/internal/replica-read`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/octet-stream' },
    body: encodeString(key),
  });
  if (res.status !== 200) throw new Error(`${node.id}: replica-read answered ${res.status}: ${await res.text()}`);
  const object = decodeReadReply(new Uint8Array(await res.arrayBuffer()));
  const live = object?.siblings.filter((s) => !s.deleted) ?? [];
  return live.length === 1 ? dec.decode(live[0]?.value) : undefined;
}

describe('removing a dead node (real processes)', () => {
  it('rebuilds its replicas on the survivors through anti-entropy, with no client reads', async () => {
    // Four zones: the ring puts each key on three of them, so every survivor misses some keys.
    const c = await startCluster({ nodes: 4, zones: ['a', 'b', 'c', 'd'], args: ['--anti-entropy-interval-ms', '500'] });
    try {
      // Converged is not yet ready: a breaker may still be open from gossip during startup.
      await waitQuorumReady(c.urls);
      const [n1, n2, n3, n4] = c.nodes as [TestNode, TestNode, TestNode, TestNode];
      const survivors = [n1, n2, n3];
      const keys = Array.from({ length: 120 }, (_, i) => `rebuild-${i}`);
      // w=all: each key is on its three replicas before the node dies.
      for (const [i, k] of keys.entries()) {
        const res = await fetch(`${survivors[i % 3]?.url}/v1/kv/${k}?w=all`, { method: 'PUT', body: `v-${k}` });
        expect(res.status, k).toBe(204);
      }
      // Copies each survivor lacks: the keys whose replicas were the other three nodes.
      const missing = async () => {
        const per: number[] = [];
        for (const node of survivors) {
          let n = 0;
          for (const k of keys) if ((await localValue(node, c.secret, k)) !== `v-${k}`) n++;
          per.push(n);
        }
        return per;
      };
      const lacking = await missing();
      for (const [i, n] of lacking.entries()) expect(n, `keys n${i + 1} lacks before the removal`).toBeGreaterThan(0);
      const before = lacking.reduce((a, b) => a + b, 0);
      // n4 held each key the survivors lack: exactly one copy of each was on it.
      expect(before).toBeLessThanOrEqual(keys.length);

      await n4.kill('SIGKILL');
      await waitFor('n1 sees n4 down', async () => (await clusterView(n1.url)).members.find((m) => m.id === 'n4')?.status === 'down', 20_000);
      const removed = await fetch(`${n1.url}/v1/cluster/remove/n4`, { method: 'POST', headers: { authorization: `Bearer ${c.secret}` } });
      expect(removed.status).toBe(202);
      await waitFor(
        'n4 gone from every survivor',
        async () => (await Promise.all(survivors.map((n) => clusterView(n.url)))).every((v) => !v.members.some((m) => m.id === 'n4')),
        30_000,
        250,
      );
      // Every key on every survivor, each copy the value written.
      await waitFor('every key rebuilt on every survivor', async () => (await missing()).every((n) => n === 0), 90_000, 1_000);
      // Anti-entropy made the copies: it counts at least one repair per copy that was missing.
      let repaired = 0;
      for (const node of survivors) repaired += await repairedBy(node);
      expect(repaired).toBeGreaterThanOrEqual(before);
    } finally {
      await c.stop();
    }
  }, 180_000);
});
