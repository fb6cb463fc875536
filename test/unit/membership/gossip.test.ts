import { describe, expect, it } from 'vitest';
import { RingkvError } from '../../../src/errors.js';
import {
  decodeGossip,
  encodeGossip,
  GOSSIP_ROUTE,
  Membership,
  type MembershipInit,
} from '../../../src/membership/index.js';
import type { MemberRecord } from '../../../src/membership/types.js';
import { ManualTime, seededRandom } from '../../../src/runtime/index.js';
import { MemoryNetwork } from '../../../src/transport/memory.js';
import { MembershipCluster, Sim } from '../../sim/harness.js';

const INTERVAL = 1000;

/** A standalone node on its own network, for tests that need fine control. */
function solo(init: Partial<MembershipInit> = {}, time = new ManualTime()) {
  const net = new MemoryNetwork(time);
  const m = new Membership(
    { transport: net.transport('me:1'), clock: time, timers: time, random: seededRandom(1) },
    { self: { id: 'me', address: 'me:1', zone: 'z', weight: 1 }, seeds: [], n: 3, gossipIntervalMs: INTERVAL, partitionBits: 6, ...init },
  );
  net.register('me:1', m.handlers());
  return { m, time, net };
}

async function pair(seed = 1, init: Partial<MembershipInit> = {}) {
  const sim = new Sim(seed);
  const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL, init });
  const a = await cluster.add({ id: 'a', zone: 'z1' });
  const b = await cluster.add({ id: 'b', zone: 'z2', seeds: [cluster.addressOf('a')] });
  return { sim, cluster, a: a.membership, b: b.membership };
}

describe('Membership lifecycle', () => {
  it('starts active without seeds, alone in its ring, up to itself', async () => {
    const { m } = solo();
    await m.start();
    expect(m.member('me')?.state).toBe('active');
    expect(m.ring().members.map((x) => x.id)).toEqual(['me']);
    expect(m.isUp('me')).toBe(true);
    expect(m.statuses()).toEqual([{ id: 'me', address: 'me:1', zone: 'z', weight: 1, status: 'up' }]);
    await m.stop();
  });

  it('ignores its own address among the seeds', async () => {
    const { m } = solo({ seeds: ['me:1'] });
    expect(m.member('me')?.state).toBe('active');
  });

  it('takes the wall clock as incarnation, past any restored own record', () => {
    const time = new ManualTime(5_000);
    const old: MemberRecord = { id: 'me', address: 'me:1', zone: 'z', weight: 1, state: 'active', incarnation: 9_000, heartbeat: 4 };
    expect(solo({}, time).m.member('me')?.incarnation).toBe(5_000);
    expect(solo({ initialRecords: [old] }, time).m.member('me')?.incarnation).toBe(9_001);
  });

  it('joins through a seed: joining, then active with a newer incarnation after the first exchange', async () => {
    const { sim, cluster, a, b } = await pair();
    expect(b.member('b')?.state).toBe('joining');
    const joiningIncarnation = b.member('b')!.incarnation;
    await sim.runUntil(() => cluster.converged() && b.member('b')?.state === 'active', 5 * INTERVAL);
    expect(b.member('b')!.incarnation).toBeGreaterThan(joiningIncarnation);
    expect(a.ring().checksum).toBe(b.ring().checksum);
    expect(a.ring().members.map((x) => x.id)).toEqual(['a', 'b']);
    expect(a.statuses().map((s) => s.status)).toEqual(['up', 'up']);
    await cluster.stopAll();
  });

  it('stays joining until readyToActivate agrees (a check that throws is a no)', async () => {
    let ready: boolean | 'throw' = 'throw';
    let asked = 0;
    const readyToActivate = (): boolean => {
      asked++;
      if (ready === 'throw') throw new Error('transfer state unreadable');
      return ready;
    };
    const { sim, cluster, a, b } = await pair(2, { readyToActivate });
    await sim.advance(5 * INTERVAL);
    expect(asked).toBeGreaterThan(0);
    expect(b.member('b')?.state).toBe('joining');
    ready = false;
    await sim.advance(5 * INTERVAL);
    expect(b.member('b')?.state).toBe('joining');
    expect(a.statuses().find((s) => s.id === 'b')?.status).toBe('joining');
    expect(a.ring().members.map((x) => x.id)).toEqual(['a']);
    ready = true;
    await sim.runUntil(() => a.member('b')?.state === 'active', 3 * INTERVAL);
    await cluster.stopAll();
  });

  it('start and stop are idempotent, and stop leaves no timer behind', async () => {
    const sim = new Sim(3);
    const cluster = new MembershipCluster(sim);
    const a = (await cluster.add({ id: 'a' })).membership;
    const b = (await cluster.add({ id: 'b', seeds: [cluster.addressOf('a')] })).membership;
    await a.start();
    await sim.advance(3 * INTERVAL);
    // A cut link leaves an exchange waiting on its timeout when we stop.
    sim.net.cut(cluster.addressOf('a'), cluster.addressOf('b'));
    await sim.advance(INTERVAL * 1.5);
    await a.stop();
    await a.stop();
    await b.stop();
    await sim.advance(0);
    expect(sim.time.pending()).toBe(0);
  });

  it('restarting a stopped instance takes a new incarnation', async () => {
    const { m, time } = solo();
    await m.start();
    const first = m.member('me')!.incarnation;
    await m.stop();
    await time.advance(10);
    await m.start();
    expect(m.member('me')!.incarnation).toBeGreaterThan(first);
    await m.stop();
  });

  it('refuses gossip before start and malformed messages', async () => {
    const { m } = solo();
    const handler = m.handlers().get(GOSSIP_ROUTE)!;
    await expect(handler(encodeGossip('x', []), undefined)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await m.start();
    await expect(handler(new TextEncoder().encode('nope'), undefined)).rejects.toBeInstanceOf(RingkvError);
    await expect(handler(new TextEncoder().encode('{"from":"x","records":[{"id":"y"}]}'), undefined)).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    // A well-formed message is merged and answered with the whole table.
    const peer: MemberRecord = { id: 'p', address: 'p:1', zone: 'z', weight: 1, state: 'active', incarnation: 1, heartbeat: 1 };
    const reply = decodeGossip(await handler(encodeGossip('p', [peer]), undefined));
    expect(reply.records.map((r) => r.id)).toEqual(['me', 'p']);
    expect(m.member('p')).toEqual(peer);
    await m.stop();
  });
});

describe('Membership state changes', () => {
  it('leave(): active -> leaving with a newer incarnation; still in the ring; seen by peers', async () => {
    const { sim, cluster, a, b } = await pair(4);
    await sim.runUntil(() => cluster.converged(), 5 * INTERVAL);
    const inc = b.member('b')!.incarnation;
    expect(b.leave()).toBe(true);
    expect(b.leave()).toBe(false);
    expect(b.member('b')!.incarnation).toBeGreaterThan(inc);
    await sim.runUntil(() => a.member('b')?.state === 'leaving', 5 * INTERVAL);
    expect(a.statuses().find((s) => s.id === 'b')?.status).toBe('leaving');
    expect(a.ring().members.map((x) => x.id)).toEqual(['a', 'b']);
    await cluster.stopAll();
  });

  it('leave() while joining removes the node at once (it owns nothing)', async () => {
    const { m } = solo({ seeds: ['elsewhere:1'] });
    expect(m.member('me')?.state).toBe('joining');
    expect(m.leave()).toBe(true);
    expect(m.member('me')?.state).toBe('removed');
  });

  it('remove(id) of a live member: it accepts the removal and leaves every ring', async () => {
    const { sim, cluster, a, b } = await pair(5);
    await sim.runUntil(() => cluster.converged(), 5 * INTERVAL);
    const inc = b.member('b')!.incarnation;
    expect(a.remove('b')).toBe(true);
    expect(a.remove('b')).toBe(false);
    expect(a.remove('nobody')).toBe(false);
    // Removed at the admin node's wall clock (never below the incarnation it knew).
    expect(a.member('b')).toMatchObject({ state: 'removed', incarnation: Math.max(inc, Math.floor(sim.time.now())) });
    expect(a.statuses().map((s) => s.id)).toEqual(['a']);
    expect(a.isUp('b')).toBe(false);
    await sim.runUntil(() => b.member('b')?.state === 'removed', 5 * INTERVAL);
    expect(b.ring().members.map((x) => x.id)).toEqual(['a']);
    expect(b.isUp('b')).toBe(true);
    // Its heartbeat no longer moves, and it does not come back on its own.
    await sim.advance(10 * INTERVAL);
    expect(a.member('b')?.state).toBe('removed');
    // A restart (new incarnation) brings it back.
    await cluster.crash('b');
    await sim.advance(100);
    await cluster.restart('b');
    await sim.runUntil(() => a.member('b')?.state === 'active' && a.isUp('b'), 5 * INTERVAL);
    await cluster.stopAll();
  });

  it('remove(id) outranks a restart of that member the admin node has not heard of yet', async () => {
    const sim = new Sim(7);
    const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL });
    await cluster.add({ id: 'a' });
    await cluster.add({ id: 'b', seeds: [cluster.addressOf('a')] });
    await cluster.add({ id: 'c', seeds: [cluster.addressOf('a')] });
    await sim.runUntil(() => cluster.converged(), 10 * INTERVAL);
    const a = cluster.node('a').membership;
    const b = cluster.node('b').membership;
    const oldInc = a.member('c')!.incarnation;
    // c restarts while a is cut off from everyone, so a only knows c's previous life.
    sim.net.cut(cluster.addressOf('a'), cluster.addressOf('b'));
    sim.net.cut(cluster.addressOf('a'), cluster.addressOf('c'));
    await cluster.crash('c');
    await sim.advance(100);
    const c = (await cluster.restart('c')).membership;
    await sim.runUntil(() => b.member('c')!.incarnation > oldInc, 5 * INTERVAL);
    const newInc = c.member('c')!.incarnation;
    expect(newInc).toBeGreaterThan(oldInc);
    expect(a.member('c')!.incarnation).toBe(oldInc);
    // The admin removes c through a, after the restart.
    await sim.advance(500);
    expect(a.remove('c')).toBe(true);
    expect(a.member('c')!.incarnation).toBeGreaterThan(newInc);
    sim.net.heal();
    await sim.runUntil(
      () => [a, b, c].every((m) => m.member('c')?.state === 'removed' && !m.ring().members.some((x) => x.id === 'c')),
      10 * INTERVAL,
    );
    expect(b.statuses().map((s) => s.id)).toEqual(['a', 'b']);
    // It stays removed...
    await sim.advance(10 * INTERVAL);
    expect(b.member('c')?.state).toBe('removed');
    // ...until a later restart, which brings it back as a new life.
    await cluster.crash('c');
    await sim.advance(100);
    await cluster.restart('c');
    await sim.runUntil(() => a.member('c')?.state === 'active' && b.isUp('c') && a.isUp('c'), 10 * INTERVAL);
    await cluster.stopAll();
  });

  it('refutes an older life of itself that carries a higher incarnation (clock went backwards)', async () => {
    const sim = new Sim(6);
    const cluster = new MembershipCluster(sim, { persistence: false });
    await cluster.add({ id: 'a' });
    await cluster.add({ id: 'b', seeds: [cluster.addressOf('a')] });
    await sim.runUntil(() => cluster.converged(), 5 * INTERVAL);
    const oldInc = cluster.node('b').membership.member('b')!.incarnation;
    await cluster.crash('b');
    // Restart b with a wall clock an hour behind.
    const skewed = { now: () => sim.time.now() - 3_600_000, monotonic: () => sim.time.monotonic() };
    const b2 = new Membership(
      { transport: sim.net.transport(cluster.addressOf('b')), clock: skewed, timers: sim.time, random: sim.fork() },
      { self: { id: 'b', address: cluster.addressOf('b'), zone: 'default', weight: 1 }, seeds: [cluster.addressOf('a')], n: 3, gossipIntervalMs: INTERVAL, partitionBits: 6 },
    );
    expect(b2.member('b')!.incarnation).toBeLessThan(oldInc);
    sim.net.register(cluster.addressOf('b'), b2.handlers());
    await b2.start();
    const a = cluster.node('a').membership;
    await sim.runUntil(() => (a.member('b')?.incarnation ?? 0) > oldInc && a.member('b')?.state === 'active', 5 * INTERVAL);
    expect(b2.member('b')!.incarnation).toBe(a.member('b')!.incarnation);
    await b2.stop();
    await cluster.stopAll();
  });
});

describe('Membership liveness and hooks', () => {
  it('reportUnreachable only hastens a verdict when gossip has been silent for two intervals', async () => {
    const { sim, cluster, a } = await pair(7);
    await sim.runUntil(() => cluster.converged(), 5 * INTERVAL);
    await sim.advance(20 * INTERVAL);
    a.reportUnreachable('b');
    expect(a.isUp('b')).toBe(true); // fresh heartbeats: one failed call proves nothing
    sim.net.isolate(cluster.addressOf('b'));
    await sim.advance(2.5 * INTERVAL);
    expect(a.isUp('b')).toBe(true); // phi alone would still wait
    a.reportUnreachable('b');
    expect(a.isUp('b')).toBe(false);
    a.reportReachable('b');
    expect(a.isUp('b')).toBe(true);
    a.reportUnreachable('b');
    sim.net.heal();
    await sim.runUntil(() => a.isUp('b'), 3 * INTERVAL);
    a.reportUnreachable('a'); // self is always up
    expect(a.isUp('a')).toBe(true);
    await cluster.stopAll();
  });

  it('notifies listeners of joins, state and liveness changes, but not of heartbeats', async () => {
    const { sim, cluster, a } = await pair(8);
    let calls = 0;
    const off = a.onChange(() => calls++);
    await sim.runUntil(() => cluster.converged(), 5 * INTERVAL);
    expect(calls).toBeGreaterThan(0);
    const ring = a.ring();
    const settled = calls;
    await sim.advance(20 * INTERVAL);
    expect(calls).toBe(settled);
    expect(a.ring()).toBe(ring); // not rebuilt while the member set is unchanged
    await cluster.crash('b');
    await sim.runUntil(() => !a.isUp('b'), 10 * INTERVAL);
    await sim.advance(2 * INTERVAL);
    expect(calls).toBe(settled + 1);
    expect(a.statuses().find((s) => s.id === 'b')?.status).toBe('down');
    off();
    await cluster.restart('b');
    await sim.advance(5 * INTERVAL);
    expect(calls).toBe(settled + 1);
    await cluster.stopAll();
  });

  it('persists at most once per round, only after changes, and restores on restart', async () => {
    const sim = new Sim(9);
    const saved: MemberRecord[][] = [];
    const cluster = new MembershipCluster(sim);
    await cluster.add({ id: 'a' });
    const b = await cluster.add({ id: 'b', seeds: [cluster.addressOf('a')] });
    const inner = b.membership;
    await sim.runUntil(() => cluster.converged(), 5 * INTERVAL);
    expect(b.persisted?.map((r) => r.id)).toEqual(['a', 'b']);
    // Count calls through a fresh instance with its own persist hook.
    await cluster.crash('b');
    const m = new Membership(
      {
        transport: sim.net.transport(b.address),
        clock: sim.time,
        timers: sim.time,
        random: sim.fork(),
        persist: async (rs) => {
          saved.push(rs);
        },
      },
      {
        self: { id: 'b', address: b.address, zone: 'default', weight: 1 },
        seeds: [],
        n: 3,
        gossipIntervalMs: INTERVAL,
        partitionBits: 6,
        initialRecords: b.persisted,
      },
    );
    expect(m.member('a')?.state).toBe('active');
    expect(m.member('b')!.incarnation).toBeGreaterThan(inner.member('b')!.incarnation);
    sim.net.register(b.address, m.handlers());
    await m.start();
    await sim.advance(3 * INTERVAL);
    const afterStart = saved.length;
    expect(afterStart).toBeGreaterThanOrEqual(1);
    await sim.advance(20 * INTERVAL);
    expect(saved.length).toBe(afterStart); // heartbeats alone are not persisted
    m.leave();
    m.leave();
    await m.stop();
    expect(saved.at(-1)?.find((r) => r.id === 'b')?.state).toBe('leaving');
    await cluster.stopAll();
  });

  it('retries saving the member table after a failed save, until one lands', async () => {
    const sim = new Sim(31);
    const saved: MemberRecord[][] = [];
    let attempts = 0;
    let diskFull = true;
    const m = new Membership(
      {
        transport: sim.net.transport('solo:1'),
        clock: sim.time,
        timers: sim.time,
        random: sim.fork(),
        persist: async (rs) => {
          attempts++;
          if (diskFull) throw new Error('ENOSPC');
          saved.push(rs);
        },
      },
      { self: { id: 'solo', address: 'solo:1', zone: 'default', weight: 1 }, seeds: [], n: 3, gossipIntervalMs: INTERVAL, partitionBits: 6 },
    );
    sim.net.register('solo:1', m.handlers());
    await m.start();
    await sim.advance(3 * INTERVAL);
    expect(saved).toEqual([]);
    const failing = attempts;
    expect(failing).toBeGreaterThanOrEqual(1);
    // Still failing: it keeps trying, once per round, and nothing is lost in memory.
    await sim.advance(3 * INTERVAL);
    expect(attempts).toBeGreaterThan(failing);
    expect(m.leave()).toBe(true);
    diskFull = false;
    await sim.advance(3 * INTERVAL);
    expect(saved.at(-1)?.find((r) => r.id === 'solo')?.state).toBe('leaving');
    // Saved once it could be; then quiet again until the next change.
    const settled = attempts;
    await sim.advance(10 * INTERVAL);
    expect(attempts).toBe(settled);
    await m.stop();
  });

  it('counts exchanges and failures and reports each round', async () => {
    const outcomes: boolean[] = [];
    const sim = new Sim(10);
    const cluster = new MembershipCluster(sim, { init: {} });
    await cluster.add({ id: 'a' });
    const b = await cluster.add({ id: 'b', seeds: [cluster.addressOf('a')] });
    await sim.runUntil(() => cluster.converged(), 5 * INTERVAL);
    const before = b.membership.stats();
    expect(before.gossipRounds).toBeGreaterThan(0);
    await cluster.crash('a');
    await sim.advance(5 * INTERVAL);
    const after = b.membership.stats();
    expect(after.gossipFailures).toBeGreaterThan(before.gossipFailures);
    await cluster.stopAll();

    // onGossipRound sees the same outcomes.
    const { m, time } = solo({ seeds: ['ghost:1'], onGossipRound: (ok) => outcomes.push(ok) });
    await m.start();
    await time.advance(3 * INTERVAL);
    expect(outcomes.length).toBe(m.stats().gossipRounds);
    expect(outcomes.every((ok) => !ok)).toBe(true);
    expect(m.stats().gossipFailures).toBe(outcomes.length);
    expect(m.member('me')?.state).toBe('joining');
    await m.stop();
  });

  it('keeps gossiping when a listener throws', async () => {
    const { sim, cluster, a } = await pair(11);
    a.onChange(() => {
      throw new Error('boom');
    });
    await sim.runUntil(() => cluster.converged(), 5 * INTERVAL);
    await cluster.crash('b');
    await sim.runUntil(() => !a.isUp('b'), 10 * INTERVAL);
    await cluster.restart('b');
    await sim.runUntil(() => cluster.converged(), 10 * INTERVAL);
    await cluster.stopAll();
  });
});
