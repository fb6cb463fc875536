/**
 * Membership: a member removed while it runs, then started again in the same process, comes
 * back like one restarted from disk; and a node that hears only from removed nodes has not
 * heard from the cluster.
 */
import { describe, expect, it } from 'vitest';
import { MembershipCluster, Sim } from '../../sim/harness.js';

const INTERVAL = 1000;

function ringIds(cluster: MembershipCluster, id: string): string[] {
  return cluster
    .node(id)
    .membership.ring()
    .members.map((m) => m.id);
}

describe('a removed member started again in the same process', () => {
  it('rejoins through joining, as after a restart from disk, and says so (onRejoin)', async () => {
    const sim = new Sim(41);
    let transfersDone = true;
    let rejoins = 0;
    const cluster = new MembershipCluster(sim, {
      gossipIntervalMs: INTERVAL,
      init: { readyToActivate: () => transfersDone, onRejoin: () => rejoins++ },
    });
    await cluster.add({ id: 'a' });
    for (const id of ['b', 'c']) await cluster.add({ id, seeds: [cluster.addressOf('a')] });
    await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 3, 20 * INTERVAL);

    // c leaves; once its data is handed over it removes itself (what Transfers does) and stops.
    expect(cluster.node('c').membership.leave()).toBe(true);
    await sim.advance(3 * INTERVAL);
    expect(cluster.node('c').membership.remove('c')).toBe(true);
    await sim.runUntil(() => ['a', 'b'].every((id) => cluster.node(id).membership.member('c')?.state === 'removed'), 10 * INTERVAL);
    await cluster.crash('c');
    await sim.advance(5 * INTERVAL);

    // Started again in the same process (NodeCore.start() after stop()): a new member, which
    // holds none of the writes made since, so it joins.
    transfersDone = false;
    await cluster.resume('c');
    const c = cluster.node('c').membership;
    expect(c.member('c')?.state).toBe('joining');
    expect(c.member('c')?.incarnation).toBeGreaterThan(cluster.node('a').membership.member('c')?.incarnation ?? 0);
    expect(rejoins).toBe(1);
    await sim.runUntil(() => cluster.node('a').membership.member('c')?.state === 'joining', 10 * INTERVAL, {
      what: 'a seeing c join',
      explain: () => cluster.explain(),
    });
    expect(ringIds(cluster, 'a')).toEqual(['a', 'b']);
    transfersDone = true;
    await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 3, 10 * INTERVAL, {
      what: 'c an owner again',
      explain: () => cluster.explain(),
    });
    await cluster.stopAll();
  });
});

describe('a node that hears only from a removed node', () => {
  it('does not take it for the cluster: a join through a removed seed waits for a member', async () => {
    const sim = new Sim(42);
    const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL });
    await cluster.add({ id: 'a' });
    for (const id of ['b', 's']) await cluster.add({ id, seeds: [cluster.addressOf('a')] });
    await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 3, 20 * INTERVAL);
    // The operator removes s while it runs (it keeps running, and answering gossip).
    expect(cluster.node('a').membership.remove('s')).toBe(true);
    await sim.runUntil(() => cluster.node('s').membership.member('s')?.state === 'removed', 10 * INTERVAL);

    // x joins with s as its only seed while a and b are out of its reach.
    const [a, b, s, x] = ['a', 'b', 's', 'x'].map((id) => cluster.addressOf(id)) as [string, string, string, string];
    sim.net.partition([
      [a, b],
      [s, x],
    ]);
    await cluster.add({ id: 'x', seeds: [s] });
    await sim.advance(10 * INTERVAL);
    // s answered, but it is no member: x has not joined anything, and owns nothing.
    expect(cluster.node('x').membership.member('x')?.state).toBe('joining');
    expect(ringIds(cluster, 'x')).toEqual(['a', 'b']);

    // Once a member answers (x learned of a and b from s), x joins.
    sim.net.heal();
    await sim.runUntil(
      () => ['a', 'b', 'x'].every((id) => cluster.node(id).membership.member('x')?.state === 'active' && ringIds(cluster, id).length === 3),
      20 * INTERVAL,
      { what: 'x active in every ring', explain: () => cluster.explain() },
    );
    await cluster.stopAll();
  });
});
