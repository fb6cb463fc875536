/**
 * Membership: a member removed while it was down must not come back `active` (with none of
 * the writes made since) however the removal reaches the cluster, in particular when the
 * first peer the restarted member hears from has not heard of the removal yet.
 *
 * Four members a-d join through a. d crashes; the admin removes it on a while a is cut off
 * from b and c, so only a knows. d restarts (its disk says 'active') and can reach b and c but
 * not a: b or c answers first, and neither knows of the removal.
 */
import { describe, expect, it } from 'vitest';
import { GOSSIP_ROUTE } from '../../src/membership/index.js';
import type { InternalHandler, Transport } from '../../src/transport/transport.js';
import { forEachSeed, MembershipCluster, Sim } from './harness.js';

const FILE = 'test/sim/membership-removal-window.sim.test.ts';
const INTERVAL = 1000;
const SEEDS = 20;

function ringIds(cluster: MembershipCluster, id: string): string[] {
  return cluster
    .node(id)
    .membership.ring()
    .members.map((m) => m.id);
}

/** a-d converged, then d crashed and removed on a while a was cut off from b and c. */
async function removedBehindAPartition(
  seed: number,
  opts: { olderVersion?: readonly string[] } = {},
): Promise<{ sim: Sim; cluster: MembershipCluster; transfers: { done: boolean } }> {
  const sim = new Sim(seed);
  const transfers = { done: true };
  const old = new Set((opts.olderVersion ?? []).map((id) => `${id}.sim:7000`));
  if (old.size > 0) runAsOlderVersion(sim, old);
  const cluster = new MembershipCluster(sim, {
    gossipIntervalMs: INTERVAL,
    init: { readyToActivate: () => transfers.done },
    extraHandlers: (node) =>
      old.has(node.address) ? new Map([[GOSSIP_ROUTE, stripping(node.membership.handlers().get(GOSSIP_ROUTE) as InternalHandler)]]) : new Map(),
  });
  const seeds = [cluster.addressOf('a')];
  await cluster.add({ id: 'a' });
  for (const id of ['b', 'c', 'd']) await cluster.add({ id, seeds });
  await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 4, 20 * INTERVAL, { what: 'a-d converged' });
  await sim.advance(sim.between(0, 3000));
  await cluster.crash('d');
  await sim.advance(sim.between(5, 12) * INTERVAL);
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => cluster.addressOf(id)) as [string, string, string, string];
  sim.net.partition([[a], [b, c, d]]);
  expect(cluster.node('a').membership.remove('d')).toBe(true);
  await sim.advance(sim.between(1, 5) * INTERVAL);
  for (const id of ['b', 'c']) expect(cluster.node(id).membership.member('d')?.state, `d as ${id} sees it`).toBe('active');
  return { sim, cluster, transfers };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A gossip message as a node of the version before `since`/`removedAt` has it: its decoder
 * keeps only the fields it knows, so it neither sees nor passes on the new ones.
 */
function strip(body: Uint8Array): Uint8Array {
  const msg = JSON.parse(decoder.decode(body)) as { from: string; records: Record<string, unknown>[] };
  const records = msg.records.map(({ since: _s, removedAt: _r, ...rest }) => rest);
  return encoder.encode(JSON.stringify({ from: msg.from, records }));
}

function stripping(h: InternalHandler): InternalHandler {
  return async (body, from) => strip(await h(strip(body), from));
}

/** Gossip sent by the nodes at `old` addresses, and the replies they get, are stripped. */
function runAsOlderVersion(sim: Sim, old: ReadonlySet<string>): void {
  const transport = sim.net.transport.bind(sim.net);
  sim.net.transport = (from: string): Transport => {
    const t = transport(from);
    if (!old.has(from)) return t;
    return {
      send: async (to, route, body, opts) => {
        const reply = await t.send(to, route, route === GOSSIP_ROUTE ? strip(body) : body, opts);
        return route === GOSSIP_ROUTE ? strip(reply) : reply;
      },
      close: () => t.close(),
    };
  };
}

describe('a member removed while it was down, whose first peer has not heard of the removal', () => {
  it(`is not back active anywhere: it learns of the removal later and rejoins through joining (${SEEDS} seeds)`, async () => {
    await forEachSeed(
      SEEDS,
      async (seed) => {
        const { sim, cluster, transfers } = await removedBehindAPartition(seed);
        const [a, d] = [cluster.addressOf('a'), cluster.addressOf('d')];
        transfers.done = false;
        await cluster.restart('d');
        // d hears from b or c (which do not know) and announces its new life there.
        await sim.runUntil(() => cluster.node('b').membership.member('d')?.incarnation !== cluster.node('a').membership.member('d')?.incarnation, 10 * INTERVAL, {
          what: 'd heard from b or c',
        });
        await sim.advance(3 * INTERVAL);
        // The partition heals, except that d and a still cannot talk directly: the removal can
        // reach d only through b and c (and a learns of d's new life the same way).
        sim.net.heal();
        sim.net.cut(a, d);
        // A member that has heard of the removal never puts d back in its ring (d stays out
        // until its transfers are done, which they are not).
        const knew = new Set<string>();
        const check = (): void => {
          for (const id of ['a', 'b', 'c']) {
            if (cluster.node(id).membership.member('d')?.state === 'removed') knew.add(id);
            if (knew.has(id)) expect(ringIds(cluster, id), `${id}'s ring at ${sim.elapsed()} ms`).toEqual(['a', 'b', 'c']);
          }
        };
        await sim.runUntil(() => cluster.node('d').membership.member('d')?.state === 'joining', 30 * INTERVAL, {
          what: 'd learning it was removed',
          check,
          explain: () => cluster.explain(),
        });
        await sim.runFor(10 * INTERVAL, { check });
        for (const id of ['a', 'b', 'c', 'd']) {
          expect(cluster.node(id).membership.member('d')?.state, `d's state as ${id} sees it`).toBe('joining');
          expect(ringIds(cluster, id), `${id}'s ring`).toEqual(['a', 'b', 'c']);
        }
        transfers.done = true;
        sim.net.heal();
        await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 4, 20 * INTERVAL, {
          what: 'd an owner again',
          explain: () => cluster.explain(),
        });
        await cluster.stopAll();
      },
      { file: FILE, base: 100 },
    );
  });

  it(`is still told so after it announced a life and restarted again before hearing of it (${SEEDS} seeds)`, async () => {
    await forEachSeed(
      SEEDS,
      async (seed) => {
        const { sim, cluster, transfers } = await removedBehindAPartition(seed);
        transfers.done = false;
        await cluster.restart('d');
        await sim.runUntil(() => cluster.node('b').membership.member('d')?.incarnation !== cluster.node('a').membership.member('d')?.incarnation, 10 * INTERVAL, {
          what: 'd heard from b or c',
        });
        await sim.advance(3 * INTERVAL);
        // d has announced (and saved) its new life, and crashes before the removal reaches it.
        expect(cluster.node('d').membership.member('d')?.state).toBe('active');
        await cluster.crash('d');
        sim.net.heal();
        await sim.runUntil(() => ['b', 'c'].every((id) => cluster.node(id).membership.member('d')?.state === 'removed'), 20 * INTERVAL, {
          what: 'the removal reaching b and c again',
          explain: () => cluster.explain(),
        });
        await cluster.restart('d');
        await sim.runUntil(() => cluster.node('d').membership.member('d')?.state === 'joining', 20 * INTERVAL, {
          what: 'd learning it was removed',
          explain: () => cluster.explain(),
        });
        await sim.runFor(5 * INTERVAL);
        for (const id of ['a', 'b', 'c']) expect(ringIds(cluster, id), `${id}'s ring`).toEqual(['a', 'b', 'c']);
        transfers.done = true;
        await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 4, 20 * INTERVAL, {
          what: 'd an owner again',
          explain: () => cluster.explain(),
        });
        await cluster.stopAll();
      },
      { file: FILE, base: 200 },
    );
  });

  it(`converges and settles in a cluster half upgraded, where b and c strip the new fields (${SEEDS} seeds)`, async () => {
    // During a rolling upgrade the removal window is as wide as before the upgrade when the
    // news travels through older nodes; what must hold is that the cluster still converges,
    // on one table, and that nobody keeps bumping d's incarnation (a refutation loop).
    await forEachSeed(
      SEEDS,
      async (seed) => {
        const { sim, cluster } = await removedBehindAPartition(seed, { olderVersion: ['b', 'c'] });
        await cluster.restart('d');
        await sim.advance(sim.between(1, 6) * INTERVAL);
        sim.net.heal();
        await sim.runUntil(() => cluster.converged() && cluster.node('d').membership.member('d')?.state !== 'joining', 60 * INTERVAL, {
          what: 'convergence',
          explain: () => cluster.explain(),
        });
        const settled = cluster.tableSignature('a');
        await sim.runFor(30 * INTERVAL);
        expect(cluster.converged(), cluster.explain()).toBe(true);
        expect(cluster.tableSignature('a')).toBe(settled);
        await cluster.stopAll();
      },
      { file: FILE, base: 300 },
    );
  });
});
