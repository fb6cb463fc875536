/**
 * The setting of the leave-and-hints simulations (leave-hands-over-hints.sim.test.ts,
 * handoff-leave-relocation.sim.test.ts): five nodes in zones a, b, c, a, b; N=3; anti-entropy
 * hourly, so n3 learns of writes it missed only through hints. n3 gains no partition when n5
 * leaves (hintsOnN5 checks it), so the leave does not wait for n3.
 */
import { expect } from 'vitest';
import { receivers } from '../../src/handoff/transfer-plan.js';
import { buildRing } from '../../src/ring/ring.js';
import type { InternalHandler } from '../../src/transport/transport.js';
import type { SimCluster } from './cluster-sim.js';

/** The members that stay up and in the cluster throughout. */
export const others = ['n1', 'n2', 'n4'];

/** Hints parked on `ids` together. */
export function hintsOn(c: SimCluster, ids: readonly string[]): number {
  return ids.reduce((sum, id) => sum + c.node(id).c.replica.pendingHints, 0);
}

/** The ring `c` will have once `leaving` is gone. */
export function ringWithout(c: SimCluster, leaving: string): ReturnType<typeof buildRing> {
  const ids = c.node('n1').c.membership.ring().members.map((m) => m.id).filter((id) => id !== leaving);
  return buildRing(
    ids.map((x) => ({ id: x, zone: c.node(x).init.zone, weight: 1 })),
    { n: 3, partitionBits: 8 },
  );
}

/**
 * Writes keys replicated by n3 and not n5 through n2 while n3 is down, and returns those for
 * which n5 stood in for n3 (it holds a copy and a hint for each).
 */
export async function hintsOnN5(c: SimCluster, count = 60): Promise<string[]> {
  const ring = c.node('n1').c.membership.ring();
  expect(receivers(ring, ringWithout(c, 'n5'))).not.toContain('n3');
  const candidates = Array.from({ length: 10 * count }, (_, i) => `k${i}`)
    .filter((k) => {
      const pref = ring.preferenceList(ring.partitionOf(k));
      return pref.includes('n3') && !pref.includes('n5');
    })
    .slice(0, count);
  await c.crash('n3');
  await c.runUntil('n3 seen down', () => [...others, 'n5'].every((id) => !c.node(id).c.membership.isUp('n3')), 20_000);
  for (const k of candidates) await c.put('n2', k, `v-${k}`, { w: 2 });
  const keys: string[] = [];
  for (const k of candidates) if ((await c.local('n5', k)).length > 0) keys.push(k);
  expect(keys.length).toBeGreaterThanOrEqual(5);
  expect(c.node('n5').c.replica.pendingHints).toBe(keys.length);
  return keys;
}

/** n5 starts leaving; returns whether it has removed itself. */
export function leaveN5(c: SimCluster): () => boolean {
  const n5 = c.node('n5').c;
  let left = false;
  n5.transfers.onLeft = () => {
    left = true;
  };
  expect(n5.membership.leave()).toBe(true);
  return () => left;
}

/** Makes `id` refuse `routes` (its disk fails, say) while it still gossips; returns the undo. */
export function refuse(c: SimCluster, id: string, routes: readonly string[]): () => void {
  const node = c.node(id);
  const handlers = new Map<string, InternalHandler>(node.c.handlers);
  for (const r of routes) handlers.set(r, () => Promise.reject(new Error(`${r} refused by the test`)));
  c.sim.net.register(node.address, handlers);
  return () => c.sim.net.register(node.address, node.c.handlers);
}

/** Keys (of `keys`) n3 does not hold as written. */
export async function missingOnN3(c: SimCluster, keys: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const k of keys) if ((await c.local('n3', k)).join() !== `v-${k}`) out.push(k);
  return out;
}

/**
 * n5, gone, exits 5 gossip rounds later (as node.ts does); n3 comes back (unless it is up
 * already); every key must reach n3 (through hints only: no anti-entropy).
 */
export async function n3GetsEveryKey(c: SimCluster, keys: readonly string[]): Promise<void> {
  const t0 = c.time.now();
  await c.runUntil('5 gossip rounds', () => c.time.now() - t0 >= 5 * 200, 5_000);
  await c.crash('n5');
  await c.runUntil('n5 gone everywhere', () => others.every((id) => !c.node(id).c.membership.ring().members.some((m) => m.id === 'n5')), 30_000);
  if (!c.node('n3').up) await c.startNode(c.node('n3'));
  await c.runUntil('n3 has every key', async () => (await missingOnN3(c, keys)).length === 0, 30_000).catch(async (err: unknown) => {
    throw new Error(`${String(err)}; n3 lacks ${(await missingOnN3(c, keys)).join(' ')}`);
  });
}
