/**
 * Membership: a seed that is this node under
 * another spelling of its address, admin removals that a member's own later records used to
 * undo (a restart after a removal it slept through, a state change racing the removal), and
 * a node's own stall taken for the silence of its peers.
 */
import { describe, expect, it } from 'vitest';
import { Membership, PhiAccrualDetector } from '../../../src/membership/index.js';
import type { InternalHandler } from '../../../src/transport/transport.js';
import { MembershipCluster, Sim } from '../../sim/harness.js';

const INTERVAL = 1000;

/** Ring member ids of a node's current ring. */
function ringIds(cluster: MembershipCluster, id: string): string[] {
  return cluster
    .node(id)
    .membership.ring()
    .members.map((m) => m.id);
}

describe('a seed that is this node under another address', () => {
  it('does not split a cluster whose nodes share one seed list spelled differently from their addresses', async () => {
    // Every node gets the same `--seeds` (SPEC: the list "may include itself"), written as
    // aliases (`localhost:…` while each advertises `127.0.0.1:…`), and all start together.
    for (let seed = 1; seed <= 20; seed++) {
      const sim = new Sim(seed);
      const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL });
      const ids = ['a', 'b', 'c'];
      const aliases = ids.map((id) => `${id}.alias:7000`);
      for (const [i, id] of ids.entries()) {
        const node = await cluster.add({ id, seeds: aliases });
        sim.net.register(aliases[i] as string, node.membership.handlers());
      }
      await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 3, 30 * INTERVAL, {
        what: 'one cluster of three',
        explain: () => cluster.explain(),
      });
      await cluster.stopAll();
    }
  });

  it('is not taken for the cluster: the node keeps joining until a real seed answers, then joins it', async () => {
    const sim = new Sim(23);
    const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL });
    // b's seed list names b itself as `localhost:…` while b advertises its canonical address
    // (SPEC: the list "may include itself"), plus a, which is still booting.
    const alias = 'b.alias:7000';
    const b = await cluster.add({ id: 'b', seeds: [alias, cluster.addressOf('a')] });
    sim.net.register(alias, b.membership.handlers());
    await sim.advance(10 * INTERVAL);
    // Nobody else has answered yet: b has not heard from any cluster.
    expect(b.membership.member('b')?.state).toBe('joining');

    await cluster.add({ id: 'a' });
    await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 2, 20 * INTERVAL, {
      what: 'b joining a once a is up',
      explain: () => cluster.explain(),
    });
    expect(ringIds(cluster, 'b')).toEqual(['a', 'b']);
    await cluster.stopAll();
  });

  it('a lone node whose only seed is itself under another address starts a cluster of one, and stops asking itself', async () => {
    const sim = new Sim(25);
    const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL });
    // `--advertise 10.0.0.5:8081 --seeds node1:8081`: the seed is this very node.
    const alias = 'a.alias:7000';
    let asked = 0;
    const a = await cluster.add({ id: 'a', seeds: [alias] });
    const handlers = a.membership.handlers();
    const counted = (h: InternalHandler): InternalHandler => (body, from) => {
      asked++;
      return h(body, from);
    };
    sim.net.register(alias, new Map([...handlers].map(([route, h]) => [route, counted(h)])));
    await sim.runUntil(() => a.membership.member('a')?.state === 'active' && ringIds(cluster, 'a').length === 1, 10 * INTERVAL, {
      what: 'a active alone',
      explain: () => cluster.explain(),
    });
    const seen = asked;
    await sim.advance(20 * INTERVAL);
    expect(asked).toBe(seen);
    // And a node that joins through it later finds it.
    await cluster.add({ id: 'b', seeds: [cluster.addressOf('a')] });
    await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 2, 20 * INTERVAL);
    await cluster.stopAll();
  });
});

/**
 * Four members a-d; then d crashes and an admin removes it for good, which every other member
 * learns. `transfers.done` models ownership transfer: a joining node turns active only while
 * it is true.
 */
async function removedWhileDown(seed: number): Promise<{ sim: Sim; cluster: MembershipCluster; transfers: { done: boolean } }> {
  const sim = new Sim(seed);
  const transfers = { done: true };
  const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL, init: { readyToActivate: () => transfers.done } });
  const seeds = [cluster.addressOf('a')];
  await cluster.add({ id: 'a' });
  for (const id of ['b', 'c', 'd']) await cluster.add({ id, seeds });
  await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 4, 20 * INTERVAL);
  await cluster.crash('d');
  await sim.advance(10 * INTERVAL);
  expect(cluster.node('a').membership.remove('d')).toBe(true);
  await sim.runUntil(() => ['a', 'b', 'c'].every((id) => cluster.node(id).membership.member('d')?.state === 'removed'), 10 * INTERVAL);
  return { sim, cluster, transfers };
}

describe('admin removal', () => {
  it('a member removed while it was down rejoins through joining when it restarts, owning nothing until ready', async () => {
    const { sim, cluster, transfers } = await removedWhileDown(24);

    // d comes back with its old disk (its own record there still says 'active'). It has none
    // of the writes made since its removal, so it must pull them (joining) before owning
    // partitions again, like any new member.
    transfers.done = false;
    await cluster.restart('d');
    // Not even for a moment: d must not be back in a peer's ring before it could learn of
    // its removal from that peer.
    const notOwner = (): void => {
      for (const id of ['a', 'b', 'c']) expect(ringIds(cluster, id), `${id}'s ring at ${sim.elapsed()} ms`).toEqual(['a', 'b', 'c']);
    };
    await sim.runUntil(() => cluster.node('a').membership.member('d')?.state !== 'removed', 10 * INTERVAL, {
      what: 'restarted d seen by a',
      stepMs: 10,
      check: notOwner,
    });
    await sim.runFor(10 * INTERVAL, { stepMs: 10, check: notOwner });
    for (const id of ['a', 'b', 'c', 'd']) {
      expect(cluster.node(id).membership.member('d')?.state, `d's state as ${id} sees it`).toBe('joining');
      expect(ringIds(cluster, id), `${id}'s ring`).toEqual(['a', 'b', 'c']);
    }
    // Once its transfers are done it is an owner again.
    transfers.done = true;
    await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 4, 10 * INTERVAL);
    await cluster.stopAll();
  });

  it('a member removed while it was down is still told so after in-process restarts that never reached a peer', async () => {
    const { sim, cluster, transfers } = await removedWhileDown(30);
    // d is started again in the same process (NodeCore.start() after stop()), twice, its
    // network down each time: no life announces itself.
    transfers.done = false;
    for (let i = 0; i < 2; i++) {
      sim.net.isolate(cluster.addressOf('d'));
      await cluster.resume('d');
      await sim.advance(3 * INTERVAL);
      await cluster.crash('d');
      sim.net.heal();
    }
    await cluster.resume('d');
    await sim.runUntil(() => cluster.node('d').membership.member('d')?.state === 'joining', 10 * INTERVAL, {
      what: 'd learning it was removed',
      explain: () => cluster.explain(),
    });
    for (const id of ['a', 'b', 'c']) expect(ringIds(cluster, id), `${id}'s ring`).toEqual(['a', 'b', 'c']);
    transfers.done = true;
    await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 4, 10 * INTERVAL);
    await cluster.stopAll();
  });

  it('a member restarted in the middle of a leave that the cluster finished without it ends its leave, and says so', async () => {
    const sim = new Sim(29);
    let leftWhileDown = 0;
    const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL, init: { onLeftWhileDown: () => leftWhileDown++ } });
    const seeds = [cluster.addressOf('a')];
    await cluster.add({ id: 'a' });
    for (const id of ['b', 'c', 'd']) await cluster.add({ id, seeds });
    await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 4, 20 * INTERVAL);
    // d starts to leave and dies before it is done; the operator drops it.
    expect(cluster.node('d').membership.leave()).toBe(true);
    await sim.runUntil(() => cluster.node('a').membership.member('d')?.state === 'leaving', 10 * INTERVAL);
    await sim.advance(3 * INTERVAL); // d has saved its table since
    await cluster.crash('d');
    await sim.advance(10 * INTERVAL);
    expect(cluster.node('a').membership.remove('d')).toBe(true);
    await sim.runUntil(() => ['a', 'b', 'c'].every((id) => cluster.node(id).membership.member('d')?.state === 'removed'), 10 * INTERVAL);

    // d comes back from its disk as 'leaving': it learns its leave is over instead of starting
    // it again, and is told so (a node exits then, as after a finished leave).
    await cluster.restart('d');
    await sim.runUntil(() => cluster.node('d').membership.member('d')?.state === 'removed', 10 * INTERVAL, {
      what: 'd learning it is removed',
      explain: () => cluster.explain(),
    });
    expect(leftWhileDown).toBe(1);
    for (const id of ['a', 'b', 'c']) expect(ringIds(cluster, id), `${id}'s ring`).toEqual(['a', 'b', 'c']);
    await cluster.stopAll();
  });

  it('a member removed while it was down is still told so after restarts that never reached a peer', async () => {
    const { sim, cluster, transfers } = await removedWhileDown(28);

    // d crash-loops with its network down: each life saves its table, none reaches a peer.
    transfers.done = false;
    for (let i = 0; i < 2; i++) {
      sim.net.isolate(cluster.addressOf('d'));
      await cluster.restart('d');
      await sim.advance(3 * INTERVAL);
      await cluster.crash('d');
      sim.net.heal();
    }
    // Then it comes up for good: it still learns it was removed, and joins.
    await cluster.restart('d');
    await sim.runUntil(() => cluster.node('a').membership.member('d')?.state === 'joining', 10 * INTERVAL, {
      what: 'restarted d joining as a sees it',
      explain: () => cluster.explain(),
    });
    expect(ringIds(cluster, 'a')).toEqual(['a', 'b', 'c']);
    transfers.done = true;
    await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 4, 10 * INTERVAL);
    await cluster.stopAll();
  });

  it('a member that left and restarts without seeds rejoins through joining, not straight into the ring', async () => {
    const sim = new Sim(25);
    let transfersDone = true;
    const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL, init: { readyToActivate: () => transfersDone } });
    // a is the cluster's first node, started without seeds (SPEC: "none (a one-node cluster)").
    await cluster.add({ id: 'a' });
    for (const id of ['b', 'c']) await cluster.add({ id, seeds: [cluster.addressOf('a')] });
    await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'b').length === 3, 20 * INTERVAL);

    // a leaves; once its data is handed over it removes itself (what Transfers does), gossips
    // that, and exits.
    expect(cluster.node('a').membership.leave()).toBe(true);
    await sim.advance(3 * INTERVAL);
    expect(cluster.node('a').membership.remove('a')).toBe(true);
    await sim.runUntil(() => ['b', 'c'].every((id) => cluster.node(id).membership.member('a')?.state === 'removed'), 10 * INTERVAL);
    await sim.advance(2 * INTERVAL);
    await cluster.crash('a');
    expect(cluster.node('a').persisted?.find((r) => r.id === 'a')?.state).toBe('removed');

    // Restarted later with the same flags (no seeds) and its old disk: it finds b and c in its
    // saved table and gossips with them. It owns nothing it has data for, so it must join.
    await sim.advance(10 * INTERVAL);
    transfersDone = false;
    await cluster.restart('a');
    await sim.runUntil(() => cluster.node('b').membership.member('a')?.state !== 'removed', 10 * INTERVAL, {
      what: 'restarted a seen by b',
    });
    await sim.advance(5 * INTERVAL);
    expect(cluster.node('a').membership.member('a')?.state).toBe('joining');
    expect(ringIds(cluster, 'b')).toEqual(['b', 'c']);
    transfersDone = true;
    await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'b').length === 3, 10 * INTERVAL);
    await cluster.stopAll();
  });

  it('a removal of a joining member is not undone by that member turning active before it hears of it', async () => {
    const sim = new Sim(26);
    let transfersDone = true;
    const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL, init: { readyToActivate: () => transfersDone } });
    const seeds = [cluster.addressOf('a')];
    await cluster.add({ id: 'a' });
    await cluster.add({ id: 'b', seeds });
    await sim.runUntil(() => cluster.converged() && ringIds(cluster, 'a').length === 2, 20 * INTERVAL);

    // x joins, but its transfers take a while.
    transfersDone = false;
    await cluster.add({ id: 'x', seeds });
    await sim.runUntil(() => cluster.node('a').membership.member('x')?.state === 'joining', 10 * INTERVAL);

    // The operator cancels the join (remove through a) while x is cut off from everyone, and
    // x's transfers finish before it hears of the removal.
    sim.net.isolate(cluster.addressOf('x'));
    await sim.advance(INTERVAL);
    expect(cluster.node('a').membership.remove('x')).toBe(true);
    await sim.advance(INTERVAL);
    transfersDone = true;
    await sim.runUntil(() => cluster.node('x').membership.member('x')?.state === 'active', 5 * INTERVAL);
    sim.net.heal();

    // The removal, issued during x's current life, wins everywhere, x included.
    await sim.advance(20 * INTERVAL);
    for (const id of ['a', 'b', 'x']) {
      expect(cluster.node(id).membership.member('x')?.state, `x's state as ${id} sees it`).toBe('removed');
    }
    expect(ringIds(cluster, 'a')).toEqual(['a', 'b']);
    expect(ringIds(cluster, 'b')).toEqual(['a', 'b']);
    await cluster.stopAll();
  });
});

describe('a stall of the node itself', () => {
  it('forgive() takes the stall off every member\'s silence, never past now, keeping what was learned', () => {
    const d = new PhiAccrualDetector();
    for (let t = 0; t <= 10_000; t += 1000) d.heartbeat('x', t);
    d.heartbeat('y', 25_000);
    const learned = d.stats('x');
    // Stalled from 10.5 s to 30 s: 19.5 s that say nothing about x or y.
    expect(d.isAvailable('x', 30_000)).toBe(false);
    d.forgive(19_500, 30_000);
    expect(d.lastHeartbeat('x')).toBe(29_500);
    expect(d.lastHeartbeat('y')).toBe(30_000);
    expect(d.isAvailable('x', 30_000)).toBe(true);
    expect(d.stats('x')).toEqual(learned);
    // Silence after the stall still counts.
    expect(d.isAvailable('x', 35_000)).toBe(false);
  });

  it('is not taken for the silence of its peers: healthy peers stay up through and after it', async () => {
    const sim = new Sim(27);
    const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL });
    await cluster.add({ id: 'b' });
    await cluster.add({ id: 'c', seeds: [cluster.addressOf('b')] });
    // a runs on a clock that can jump ahead: time passes while none of a's code runs (a GC
    // pause, a suspended VM, SIGSTOP), then its overdue callbacks run.
    let stalled = 0;
    const clock = { now: () => sim.time.now() + stalled, monotonic: () => sim.time.monotonic() + stalled };
    const address = 'a.sim:7000';
    const a = new Membership(
      { transport: sim.net.transport(address), clock, timers: sim.time, random: sim.fork() },
      { self: { id: 'a', address, zone: 'default', weight: 1 }, seeds: [cluster.addressOf('b')], n: 3, gossipIntervalMs: INTERVAL, partitionBits: 8 },
    );
    sim.net.register(address, a.handlers());
    await a.start();
    await sim.runUntil(() => a.statuses().filter((s) => s.status === 'up').length === 3, 10 * INTERVAL);
    await sim.advance(30 * INTERVAL);
    let flips = 0;
    a.onChange(() => flips++);

    // a stalls for 20 s. b and c kept gossiping all along; a simply heard nothing meanwhile.
    stalled += 20_000;
    expect(a.isUp('b')).toBe(true);
    expect(a.isUp('c')).toBe(true);
    // Its overdue round runs, then it catches up; no peer is judged down on the way.
    for (let i = 0; i < 10; i++) {
      await sim.advance(INTERVAL / 10);
      expect(a.isUp('b') && a.isUp('c'), `after ${(i + 1) * 100} ms`).toBe(true);
    }
    expect(flips).toBe(0);
    // A peer that really stops is still judged down afterwards.
    await cluster.crash('c');
    await sim.runUntil(() => !a.isUp('c'), 15 * INTERVAL);
    expect(a.isUp('b')).toBe(true);
    await a.stop();
    await cluster.stopAll();
  });
});
