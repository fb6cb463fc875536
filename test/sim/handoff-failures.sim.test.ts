/**
 * The failure paths of hinted handoff and ownership transfer, each provoked on purpose in a
 * simulated cluster: a hint owner whose writes fail, hints for a removed owner, a leave whose
 * receiver is down, a join whose source refuses to serve, and a join that finds pull records
 * of an earlier transition in its store.
 */
import { describe, expect, it } from 'vitest';
import { ROUTES } from '../../src/coordinator/messages.js';
import { RingkvError } from '../../src/errors.js';
import { TRANSFER_ROUTES } from '../../src/handoff/transfer.js';
import { receivers } from '../../src/handoff/transfer-plan.js';
import { buildRing } from '../../src/ring/ring.js';
import { objectKey, utf8 } from '../../src/storage/index.js';
import type { InternalHandler } from '../../src/transport/transport.js';
import { Reader, Writer } from '../../src/wire.js';
import { rotStoredObject } from '../helpers/rot.js';
import { missingCopies, type SimCluster, withSimCluster as withCluster } from './cluster-sim.js';

/**
 * Serve node `id`'s routes again, but with `routes` failing as a broken disk would (the node
 * stays up and gossips). Returns a counter of the refused calls and a way to undo it.
 */
function breakRoute(c: SimCluster, id: string, ...routes: string[]): { refused: () => number; repair: () => void } {
  const node = c.node(id);
  let refused = 0;
  const handlers = new Map(node.c.handlers);
  for (const route of routes)
    handlers.set(route, async () => {
      refused++;
      throw new RingkvError('INTERNAL', `${route} failed on ${id} (provoked by the test)`);
    });
  c.sim.net.register(node.address, handlers);
  return { refused: () => refused, repair: () => c.sim.net.register(node.address, node.c.handlers) };
}

const pendingHints = (c: SimCluster, ids: readonly string[]): number => ids.reduce((s, id) => s + c.node(id).c.replica.pendingHints, 0);

async function delivered(c: SimCluster, ids: readonly string[]): Promise<number> {
  let n = 0;
  for (const id of ids) n += (await c.node(id).metrics.hintsDelivered.get()).values[0]?.value ?? 0;
  return n;
}

/** Crash n3 (of three), wait until n1 and n2 see it down, then write 20 keys through `via()`. */
async function writeWhileN3IsDown(c: SimCluster, via: () => string): Promise<string[]> {
  await c.crash('n3');
  await c.runUntil('n3 seen down', () => ['n1', 'n2'].every((id) => !c.node(id).c.membership.isUp('n3')), 20_000);
  const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
  for (const k of keys) await c.put(via(), k, `v-${k}`);
  return keys;
}

describe('hinted handoff when delivery fails', () => {
  it('keeps every hint while the owner refuses the hinted writes, and delivers them all once it accepts', async () => {
    await withCluster({ seed: 31, nodes: 3 }, 3, async (c) => {
      const holders = ['n1', 'n2'];
      const keys = await writeWhileN3IsDown(c, () => c.sim.pick(holders));
      const parked = pendingHints(c, holders);
      expect(parked).toBeGreaterThanOrEqual(keys.length);

      // n3 is back and gossips, but every hinted write it is sent fails.
      await c.startNode(c.node('n3'));
      const broken = breakRoute(c, 'n3', ROUTES.replicaWriteBatch);
      await c.runUntil('n3 refused several deliveries', () => broken.refused() >= 3, 30_000);
      expect(holders.every((id) => c.node(id).c.membership.isUp('n3'))).toBe(true);
      expect(pendingHints(c, holders)).toBe(parked);
      expect(await delivered(c, holders)).toBe(0);
      for (const k of keys) expect(await c.local('n3', k)).toEqual([]);

      broken.repair();
      await c.runUntil('hints drained', () => pendingHints(c, holders) === 0, 30_000);
      for (const k of keys) expect(await c.local('n3', k)).toEqual([`v-${k}`]);
      expect(await delivered(c, holders)).toBe(parked);
    });
  });

  it('a delivery pass that fails outright (the hint store unreadable) is retried by the next one', async () => {
    await withCluster({ seed: 33, nodes: 3 }, 3, async (c) => {
      const holders = ['n1', 'n2'];
      const keys = await writeWhileN3IsDown(c, () => 'n1');
      const parked = pendingHints(c, holders);
      // n1's store refuses to list its hints for a while.
      const store = c.node('n1').store;
      const keysOf = store.keys.bind(store);
      let refused = 0;
      store.keys = (ns, range) => {
        if (ns === 'hint' && refused < 3) {
          refused++;
          throw new Error('EIO (provoked by the test)');
        }
        return keysOf(ns, range);
      };
      await c.startNode(c.node('n3'));
      await c.runUntil('hints drained', () => pendingHints(c, holders) === 0, 30_000);
      expect(refused).toBe(3);
      expect(await delivered(c, holders)).toBe(parked);
      for (const k of keys) expect(await c.local('n3', k)).toEqual([`v-${k}`]);
    });
  });

  it('drops the hints held for a member removed for good, and only those', async () => {
    await withCluster({ seed: 32, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 4, async (c) => {
      const survivors = ['n1', 'n2', 'n3'];
      await c.crash('n4');
      await c.runUntil('n4 seen down', () => survivors.every((id) => !c.node(id).c.membership.isUp('n4')), 20_000);
      const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
      for (const k of keys) await c.put(c.sim.pick(survivors), k, `v-${k}`);
      expect(pendingHints(c, survivors)).toBeGreaterThan(0);

      expect(c.node('n1').c.membership.remove('n4')).toBe(true);
      await c.runUntil('hints for n4 dropped', () => pendingHints(c, survivors) === 0, 30_000);
      // Dropped, not delivered (n4 never came back), and no write was lost with them.
      expect(await delivered(c, survivors)).toBe(0);
      for (const k of keys) expect((await c.get(c.sim.pick(survivors), k)).values).toEqual([`v-${k}`]);
    });
  });
});

/** Ten keys `id` will replicate once active, by n1's pending ring (it holds none of them yet). */
function tenGainedBy(c: SimCluster, id: string): string[] {
  const pending = c.node('n1').c.membership.pendingRing();
  const gains = Array.from({ length: 400 }, (_, i) => `g${i}`)
    .filter((k) => pending.preferenceList(pending.partitionOf(k)).includes(id))
    .slice(0, 10);
  expect(gains.length).toBe(10);
  return gains;
}

describe('writes for a joining owner that cannot take them', () => {
  it('are parked as hints for it, and delivered when it is back', async () => {
    await withCluster({ seed: 38, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 3, async (c) => {
      const n4 = c.node('n4');
      await c.startNode(n4);
      const m1 = c.node('n1').c.membership;
      await c.runUntil('n1 sees n4 joining', () => m1.member('n4')?.state === 'joining' && m1.pendingRing() !== m1.ring(), 20_000);
      await c.crash('n4');
      await c.runUntil('n1 sees n4 down', () => !m1.isUp('n4'), 20_000);
      expect(m1.member('n4')?.state).toBe('joining');
      const gains = tenGainedBy(c, 'n4');
      const before = c.node('n1').c.replica.pendingHints;
      for (const k of gains) await c.put('n1', k, `v-${k}`);
      expect(c.node('n1').c.replica.pendingHints - before).toBe(gains.length);
      await c.startNode(n4);
      await c.runUntil('n1 delivered its hints', () => c.node('n1').c.replica.pendingHints === 0, 30_000);
      expect(await delivered(c, ['n1'])).toBeGreaterThanOrEqual(gains.length);
      for (const k of gains) expect(await c.local('n4', k)).toEqual([`v-${k}`]);
    });
  });

  it('are parked as hints for it when it is up but refuses them, and delivered once it accepts', async () => {
    await withCluster({ seed: 39, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 3, async (c) => {
      const n4 = c.node('n4');
      await c.startNode(n4);
      // n4 joins, but every replica write it is sent fails, hinted ones too (it stays up and
      // gossips). Its sources refuse its pulls, so it stays joining as long as the test needs.
      const broken = breakRoute(c, 'n4', ROUTES.replicaWrite, ROUTES.replicaWriteBatch);
      const pulls = ['n1', 'n2', 'n3'].map((id) => breakRoute(c, id, TRANSFER_ROUTES.pull));
      const m1 = c.node('n1').c.membership;
      await c.runUntil('n1 sees n4 joining', () => m1.member('n4')?.state === 'joining' && m1.pendingRing() !== m1.ring(), 20_000);
      expect(m1.isUp('n4')).toBe(true);
      const gains = tenGainedBy(c, 'n4');
      const before = c.node('n1').c.replica.pendingHints;
      for (const k of gains) await c.put('n1', k, `v-${k}`);
      await c.runUntil('a hint per refused copy', () => c.node('n1').c.replica.pendingHints - before === gains.length, 5_000);
      expect(broken.refused()).toBeGreaterThanOrEqual(gains.length);
      for (const k of gains) expect(await c.local('n4', k)).toEqual([]);
      for (const b of [broken, ...pulls]) b.repair();
      await c.runUntil('n1 delivered its hints', () => c.node('n1').c.replica.pendingHints === 0, 30_000);
      for (const k of gains) expect(await c.local('n4', k)).toEqual([`v-${k}`]);
    });
  });
});

describe('ownership transfer when a peer fails', () => {
  /** n2 starts leaving a 4-node cluster; returns a flag set once it has gone and its receivers. */
  async function startLeave(c: SimCluster): Promise<{ keys: string[]; left: () => boolean; gaining: string[] }> {
    const keys = Array.from({ length: 120 }, (_, i) => `k${i}`);
    for (const k of keys) await c.put('n1', k, `v-${k}`);
    const n2 = c.node('n2').c;
    let left = false;
    n2.transfers.onLeft = () => {
      left = true;
    };
    expect(n2.membership.leave()).toBe(true);
    const gaining = receivers(n2.membership.ring(), n2.membership.pendingRing()).filter((id) => id !== 'n2');
    expect(gaining.length).toBeGreaterThan(1);
    return { keys, left: () => left, gaining };
  }

  /** 20 simulated seconds in which n2 must not go: it is still leaving, with work pending. */
  async function staysFor20s(c: SimCluster, left: () => boolean): Promise<void> {
    const n2 = c.node('n2').c;
    const t0 = c.time.now();
    await c.runUntil('20 s', () => c.time.now() - t0 >= 20_000, 30_000);
    expect(left()).toBe(false);
    expect(n2.membership.member('n2')?.state).toBe('leaving');
    expect(n2.transfers.pending).toBeGreaterThan(0);
  }

  /** `id` knows of the leave and has received everything it gains in it. */
  function hasItsData(c: SimCluster, id: string): boolean {
    const m = c.node(id).c.membership;
    return m.pendingRing() !== m.ring() && c.node(id).c.transfers.complete();
  }

  async function goesAndNothingIsMissing(c: SimCluster, keys: string[], left: () => boolean): Promise<void> {
    const others = ['n1', 'n3', 'n4'];
    await c.runUntil('n2 left', () => left() && others.every((id) => c.node(id).c.membership.ring().members.length === 3), 60_000);
    await c.crash('n2');
    expect(await missingCopies(c, keys, 'n1')).toEqual([]);
  }

  it('a leaving node stays while a receiver that has not got its data is down, and goes once it has', async () => {
    await withCluster({ seed: 33, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 4, async (c) => {
      const { keys, left, gaining } = await startLeave(c);
      const [down, ...rest] = gaining as [string, ...string[]];
      // Hold `down` back (its sources refuse it), let the other receivers finish, then take
      // `down` off the network: only its being down can keep n2 now.
      const address = c.node(down).address;
      const restores: (() => void)[] = [];
      for (const n of c.nodes) {
        if (n.id === down) continue;
        const pull = n.c.handlers.get(TRANSFER_ROUTES.pull) as InternalHandler;
        const handlers = new Map(n.c.handlers);
        handlers.set(TRANSFER_ROUTES.pull, async (body, from) => {
          if (from === address) throw new RingkvError('INTERNAL', 'refused (provoked by the test)');
          return pull(body, from);
        });
        c.sim.net.register(n.address, handlers);
        restores.push(() => c.sim.net.register(n.address, n.c.handlers));
      }
      await c.runUntil('the other receivers have their data', () => rest.every((id) => hasItsData(c, id)), 30_000);
      expect(c.node(down).c.membership.pendingRing()).not.toBe(c.node(down).c.membership.ring());
      expect(c.node(down).c.transfers.complete()).toBe(false);
      c.sim.net.isolate(address);
      await c.runUntil('n2 sees the receiver down', () => !c.node('n2').c.membership.isUp(down), 20_000);
      await staysFor20s(c, left);

      for (const restore of restores) restore();
      c.sim.net.heal();
      await goesAndNothingIsMissing(c, keys, left);
    });
  });

  it('a leaving node stays while a receiver cannot say how far it is, and goes once it can', async () => {
    await withCluster({ seed: 36, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 4, async (c) => {
      const { keys, left, gaining } = await startLeave(c);
      const broken = breakRoute(c, gaining[0] as string, TRANSFER_ROUTES.status);
      await c.runUntil('every receiver has its data', () => gaining.every((id) => hasItsData(c, id)), 30_000);
      await staysFor20s(c, left);
      expect(broken.refused()).toBeGreaterThan(0);
      broken.repair();
      await goesAndNothingIsMissing(c, keys, left);
    });
  });

  it('a joining node stays joining while its sources refuse its pulls, then completes once they serve', async () => {
    await withCluster({ seed: 34, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 3, async (c) => {
      const keys = Array.from({ length: 150 }, (_, i) => `k${i}`);
      for (const [i, k] of keys.entries()) await c.put(`n${(i % 3) + 1}`, k, `v-${k}`);
      // Every source refuses: whichever n4's plan picks, its pulls fail.
      const broken = ['n1', 'n2', 'n3'].map((id) => breakRoute(c, id, TRANSFER_ROUTES.pull));
      const n4 = c.node('n4');
      await c.startNode(n4);
      const refused = (): number => broken.reduce((s, b) => s + b.refused(), 0);
      await c.runUntil('pulls refused', () => refused() >= 5, 30_000);
      const t0 = c.time.now();
      await c.runUntil('10 s of refused pulls', () => c.time.now() - t0 >= 10_000, 20_000);
      expect(n4.c.membership.member('n4')?.state).toBe('joining');
      expect(n4.c.transfers.complete()).toBe(false);
      expect(n4.c.transfers.pending).toBeGreaterThan(0);
      expect(c.nodes.slice(0, 3).every((n) => n.c.membership.ring().members.length === 3)).toBe(true);

      for (const b of broken) b.repair();
      await c.runUntil('n4 active everywhere', () => c.nodes.every((n) => n.c.membership.ring().members.length === 4), 60_000);
      await c.waitConverged();
      expect(await missingCopies(c, keys, 'n1')).toEqual([]);
    });
  });

  it('a source that finished its pulls and is then given more partitions (another source went down) serves those too', async () => {
    // N=2 on four nodes, with n3 and n4 down when n5 joins: partitions only they own have no
    // source, so n5 re-plans on every pass until they return. n1 serves its share in full;
    // n2 refuses and then goes down, so its partitions pass to n1 in a re-plan, after n1's
    // pull for this transition was already recorded as done.
    await withCluster({ seed: 37, nodes: 5, n: 2, r: 1, w: 1, zones: ['a', 'b', 'c', 'd', 'e'] }, 4, async (c) => {
      const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
      for (const [i, k] of keys.entries()) await c.put(`n${(i % 4) + 1}`, k, `v-${k}`, { w: 2 });
      const live = ['n1', 'n2'];
      await c.crash('n3');
      await c.crash('n4');
      await c.runUntil('n3 and n4 seen down', () => live.every((id) => !c.node(id).c.membership.isUp('n3') && !c.node(id).c.membership.isUp('n4')), 20_000);
      breakRoute(c, 'n2', TRANSFER_ROUTES.pull);
      const n5 = c.node('n5');
      await c.startNode(n5);
      // n1's whole share arrives (n1 is the only source that serves), then no key for 2 s
      // (n5 pulls on every 200 ms pass while a source has more).
      const received = async (): Promise<number> => (await n5.metrics.transferKeys.get()).values[0]?.value ?? 0;
      let last = -1;
      let since = 0;
      await c.runUntil(
        "n1's share received",
        async () => {
          const now = await received();
          if (now !== last) {
            last = now;
            since = c.time.now();
          }
          return now > 0 && c.time.now() - since >= 2_000;
        },
        30_000,
      );
      // n1's pull for this transition is recorded as finished (the state the fix is about).
      const record = await n5.store.get('xfer', utf8.encode('pull/n1'));
      expect(record).toBeDefined();
      const saved = new Reader(record as Uint8Array);
      saved.str();
      expect(saved.uint()).toBe(1);
      await c.crash('n2');
      await c.runUntil('n2 seen down by n5', () => !n5.c.membership.isUp('n2'), 20_000);
      const t0 = c.time.now();
      await c.runUntil('a few re-plans', () => c.time.now() - t0 >= 5_000, 10_000);
      await c.startNode(c.node('n3'));
      await c.startNode(c.node('n4'));
      await c.runUntil('n5 active', () => n5.c.membership.member('n5')?.state === 'active', 60_000);
      // Every key n5 replicates must be on n5 (n2 stays down; no reads or writes meanwhile).
      const ring = n5.c.membership.ring();
      const mine = keys.filter((k) => ring.preferenceList(ring.partitionOf(k)).includes('n5'));
      expect(mine.length).toBeGreaterThan(0);
      const missing: string[] = [];
      for (const k of mine) if ((await c.local('n5', k)).join() !== `v-${k}`) missing.push(k);
      expect(missing).toEqual([]);
    });
  });

  it('a transfer pass that fails outright (its pull records unreadable) is retried by the next one', async () => {
    await withCluster({ seed: 40, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 3, async (c) => {
      const keys = Array.from({ length: 150 }, (_, i) => `k${i}`);
      for (const [i, k] of keys.entries()) await c.put(`n${(i % 3) + 1}`, k, `v-${k}`);
      const n4 = c.node('n4');
      const getOf = n4.store.get.bind(n4.store);
      let refused = 0;
      n4.store.get = (ns, key) => {
        if (ns === 'xfer' && refused < 3) {
          refused++;
          return Promise.reject(new Error('EIO (provoked by the test)'));
        }
        return getOf(ns, key);
      };
      await c.startNode(n4);
      await c.runUntil('n4 active everywhere', () => c.nodes.every((n) => n.c.membership.ring().members.length === 4), 60_000);
      await c.waitConverged();
      expect(refused).toBe(3);
      expect(await missingCopies(c, keys, 'n1')).toEqual([]);
    });
  });

  it('a joining node ignores pull records of another transition left in its store, and pulls everything', async () => {
    await withCluster({ seed: 35, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 3, async (c) => {
      const keys = Array.from({ length: 150 }, (_, i) => `k${i}`);
      for (const [i, k] of keys.entries()) await c.put(`n${(i % 3) + 1}`, k, `v-${k}`);
      const n4 = c.node('n4');
      // What an earlier, finished transition would have left: every source marked done, with
      // a cursor past every key, under another plan's id.
      await n4.store.open();
      for (const source of ['n1', 'n2', 'n3'])
        await n4.store.put('xfer', utf8.encode(`pull/${source}`), new Writer(64).str('an-earlier-plan').uint(1).bytes(utf8.encode('\xff\xff')).finish());
      await c.startNode(n4);
      await c.runUntil('n4 active everywhere', () => c.nodes.every((n) => n.c.membership.ring().members.length === 4), 60_000);
      await c.waitConverged();
      const received = (await n4.metrics.transferKeys.get()).values[0]?.value ?? 0;
      const ring = c.node('n1').c.membership.ring();
      const owned = keys.filter((k) => ring.preferenceList(ring.partitionOf(k)).includes('n4')).length;
      expect(owned).toBeGreaterThan(0);
      expect(received).toBeGreaterThanOrEqual(owned);
      expect(await missingCopies(c, keys, 'n1')).toEqual([]);
    });
  });
});

describe('a copy that rotted on disk', () => {
  /** The stored copy of `key` on node `id` rots on disk. */
  const rot = (c: SimCluster, id: string, key: string): Promise<void> =>
    rotStoredObject(c.node(id).store, objectKey(c.node(id).c.membership.ring().partitionOf(key), key));

  it('does not wedge hint delivery: the other hinted writes are delivered and every hint is cleared', async () => {
    await withCluster({ seed: 51, nodes: 3 }, 3, async (c) => {
      const holders = ['n1', 'n2'];
      const keys = await writeWhileN3IsDown(c, () => 'n1');
      for (const id of holders) await rot(c, id, 'k0');
      await c.startNode(c.node('n3'));
      await c.runUntil('hints drained', () => pendingHints(c, holders) === 0, 30_000);
      expect(await c.local('n3', 'k0')).toEqual([]);
      for (const k of keys.slice(1)) expect(await c.local('n3', k)).toEqual([`v-${k}`]);
    });
  });

  it('does not wedge a join: the joining node skips it, receives every other key and becomes active', async () => {
    await withCluster({ seed: 52, nodes: 4, zones: ['a', 'b', 'c', 'a'] }, 3, async (c) => {
      const keys = Array.from({ length: 150 }, (_, i) => `k${i}`);
      for (const [i, k] of keys.entries()) await c.put(`n${(i % 3) + 1}`, k, `v-${k}`);
      // A key n4 will replicate, rotten on every node that could serve it.
      const pending = ringWith(c, 'n4');
      const rotten = keys.find((k) => pending.preferenceList(pending.partitionOf(k)).includes('n4')) as string;
      for (const id of ['n1', 'n2', 'n3']) await rot(c, id, rotten);
      await c.startNode(c.node('n4'));
      await c.runUntil('n4 active everywhere', () => c.nodes.every((n) => n.c.membership.ring().members.length === 4), 60_000);
      await c.waitConverged();
      const ring = c.node('n1').c.membership.ring();
      expect(ring.preferenceList(ring.partitionOf(rotten))).toContain('n4');
      expect(await c.local('n4', rotten)).toEqual([]);
      for (const k of keys)
        if (k !== rotten && ring.preferenceList(ring.partitionOf(k)).includes('n4')) expect(await c.local('n4', k)).toEqual([`v-${k}`]);
    });
  });
});

/** The ring the cluster will have once `id` (not yet started) has joined. */
function ringWith(c: SimCluster, id: string): ReturnType<typeof buildRing> {
  const ids = [...c.node('n1').c.membership.ring().members.map((m) => m.id), id];
  return buildRing(
    ids.map((x) => ({ id: x, zone: c.node(x).init.zone, weight: 1 })),
    { n: 3, partitionBits: 8 },
  );
}
