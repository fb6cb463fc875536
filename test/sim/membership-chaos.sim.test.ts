/**
 * Membership under a random mix of everything at once: crashes, restarts from disk,
 * restarts in the same process, admin removals of dead members through any running node,
 * leaves, partitions and heals.
 * Once the faults stop and every node runs again, the cluster must converge on one table and
 * ring and then stay there (no member stuck half way, no incarnation bumped round after round).
 */
import { describe, expect, it } from 'vitest';
import { type MemberTable, mergeTables } from '../../src/membership/table.js';
import { forEachSeed, MembershipCluster, Sim } from './harness.js';

const FILE = 'test/sim/membership-chaos.sim.test.ts';
const INTERVAL = 1000;
const SEEDS = 15;
const IDS = ['n1', 'n2', 'n3', 'n4', 'n5'];

/**
 * The nodes that run and are members in their own eyes agree on the table and the ring, see
 * each other up, and hold what every running node knows (a removed node that keeps running
 * may still lag behind, but not know better). Every running node that knows itself removed
 * is removed for them too.
 */
function settled(cluster: MembershipCluster): boolean {
  const members = cluster.live().filter((n) => n.membership.member(n.id)?.state !== 'removed');
  const outs = cluster.live().filter((n) => n.membership.member(n.id)?.state === 'removed');
  const first = members[0];
  if (first === undefined) return true;
  const sig = cluster.tableSignature(first.id);
  let all: MemberTable = new Map();
  for (const n of cluster.live()) all = mergeTables(all, new Map(n.membership.records().map((r) => [r.id, r])));
  const known = [...all.values()]
    .sort((x, y) => (x.id < y.id ? -1 : 1))
    .map((r) => `${r.id}:${r.state}:${r.incarnation}`)
    .join(',');
  if (known !== sig) return false;
  for (const n of members) {
    if (cluster.tableSignature(n.id) !== sig || n.membership.ring().checksum !== first.membership.ring().checksum) return false;
    for (const o of members) if (o !== n && !n.membership.isUp(o.id)) return false;
    for (const o of outs) if (n.membership.member(o.id)?.state !== 'removed') return false;
  }
  return true;
}

/** Members not removed, as every running node's knowledge merged says. */
function memberCount(cluster: MembershipCluster): number {
  let all: MemberTable = new Map();
  for (const n of cluster.live()) all = mergeTables(all, new Map(n.membership.records().map((r) => [r.id, r])));
  return [...all.values()].filter((r) => r.state !== 'removed').length;
}

describe('membership chaos', () => {
  it(`converges and settles after random crashes, restarts, removals, leaves and partitions (${SEEDS} seeds)`, async () => {
    await forEachSeed(
      SEEDS,
      async (seed) => {
        const sim = new Sim(seed);
        const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL });
        const seeds = [cluster.addressOf('n1'), cluster.addressOf('n2')];
        for (const id of IDS) await cluster.add({ id, seeds });
        await sim.runUntil(() => cluster.converged() && cluster.node('n1').membership.ring().members.length === IDS.length, 30 * INTERVAL);

        for (let step = 0; step < 25; step++) {
          const op = sim.pick(['crash', 'restart', 'resume', 'remove', 'leave', 'partition', 'heal', 'wait'] as const);
          const live = cluster.live();
          const dead = [...cluster.nodes.values()].filter((n) => !n.alive);
          if (op === 'crash' && live.length > 2) await cluster.crash(sim.pick(live).id);
          else if (op === 'restart' && dead.length > 0) await cluster.restart(sim.pick(dead).id);
          else if (op === 'resume' && dead.length > 0) await cluster.resume(sim.pick(dead).id);
          // The operator removes a dead member (what removal is for), through any running node.
          else if (op === 'remove' && live.length > 0 && dead.length > 0 && memberCount(cluster) > 3) sim.pick(live).membership.remove(sim.pick(dead).id);
          // (A leave, as a removal, needs members to stay: a cluster left by everyone has nobody
          // a restarted node could join, and it waits in 'joining' for one.)
          else if (op === 'leave' && live.length > 0 && memberCount(cluster) > 3) {
            const n = sim.pick(live);
            // A leave that finishes removes the node itself (what ownership transfer does).
            if (n.membership.leave()) {
              await sim.advance(sim.between(1, 5) * INTERVAL);
              if (n.alive && n.membership.member(n.id)?.state === 'leaving') n.membership.remove(n.id);
            }
          } else if (op === 'partition') {
            const addrs = sim.shuffle(IDS.map((id) => cluster.addressOf(id)));
            const cut = sim.between(1, addrs.length - 1);
            sim.net.partition([addrs.slice(0, cut), addrs.slice(cut)]);
          } else if (op === 'heal') sim.net.heal();
          await sim.advance(sim.between(0, 8) * INTERVAL);
        }

        sim.net.heal();
        for (const n of [...cluster.nodes.values()]) if (!n.alive) await (sim.random.next() < 0.5 ? cluster.restart(n.id) : cluster.resume(n.id));
        // A node restarted in the middle of its leave resumes it; ownership transfer would end it.
        await sim.advance(5 * INTERVAL);
        for (const n of cluster.live()) if (n.membership.member(n.id)?.state === 'leaving') n.membership.remove(n.id);
        // Every member ends active (once it has heard from the cluster), or removed.
        await sim.runUntil(
          () => settled(cluster) && cluster.live().every((n) => ['active', 'removed'].includes(n.membership.member(n.id)?.state ?? '')),
          60 * INTERVAL,
          { what: 'convergence, every member active or removed', explain: () => cluster.explain() },
        );
        const members = cluster.live().filter((n) => n.membership.member(n.id)?.state !== 'removed');
        const tables = members.map((n) => cluster.tableSignature(n.id));
        await sim.runFor(30 * INTERVAL);
        expect(settled(cluster), cluster.explain()).toBe(true);
        expect(members.map((n) => cluster.tableSignature(n.id))).toEqual(tables);
        await cluster.stopAll();
      },
      { file: FILE, base: 1 },
    );
  });
});
