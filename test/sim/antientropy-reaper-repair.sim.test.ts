/**
 * Anti-entropy: reaping with copies outside the preference list, a peer that refuses every
 * repair, and keys the wire once altered.
 *
 * - Exchanges on hand-wired replicas: LocalReplica + MemoryStore + AntiEntropy per node, one
 *   fixed ring, one MemoryNetwork and one ManualTime.
 * - Tombstone reaping on full simulated nodes (cluster-sim), where a copy can live outside a
 *   key's preference list: a fallback that stood in for a down owner keeps the version it was
 *   sent, and a hint, until it can hand them over.
 */
import { describe, expect, it } from 'vitest';
import { AntiEntropy, type AntiEntropyInit } from '../../src/antientropy/index.js';
import { RingkvError } from '../../src/errors.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { LocalReplica } from '../../src/replica/local-replica.js';
import { buildRing } from '../../src/ring/index.js';
import { ManualTime, seededRandom } from '../../src/runtime/index.js';
import { MemoryStore } from '../../src/storage/index.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { SimCluster, SimClusterNode } from './cluster-sim.js';
import { staticMembership } from './static-membership.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Replicas of every partition (N = number of nodes) that exchange over a MemoryNetwork. */
class HandWired {
  readonly time = new ManualTime();
  readonly net = new MemoryNetwork(this.time);
  readonly ring;
  readonly nodes = new Map<string, { replica: LocalReplica; ae: AntiEntropy; store: MemoryStore }>();

  constructor(
    readonly ids: readonly string[],
    readonly aeInit: Partial<AntiEntropyInit> = {},
  ) {
    this.ring = buildRing(
      ids.map((id) => ({ id, zone: id, weight: 1 })),
      { n: ids.length, partitionBits: 8 },
    );
  }

  async start(): Promise<void> {
    for (const [i, id] of this.ids.entries()) {
      const store = new MemoryStore();
      await store.open();
      const random = seededRandom(i + 1);
      const log = silentLogger();
      const replica = new LocalReplica({ store, random, log }, { actor: `${id}.e1` });
      await replica.start();
      const membership = staticMembership(id, () => this.ring);
      const ae = new AntiEntropy(
        { store, replica, membership, transport: this.net.transport(`${id}:7000`), clock: this.time, timers: this.time, random, log, metrics: new Metrics(id) },
        { timeoutMs: 1000, intervalMs: 1000, reaper: false, ...this.aeInit },
      );
      this.net.register(`${id}:7000`, ae.handlers());
      await ae.rebuild();
      this.nodes.set(id, { replica, ae, store });
    }
  }

  async stop(): Promise<void> {
    for (const n of this.nodes.values()) {
      await n.ae.stop();
      await n.store.close();
    }
  }

  /** Run `p` to completion while simulated time passes. */
  async settle<T>(p: Promise<T>): Promise<T> {
    let done = false;
    const watched = p.finally(() => {
      done = true;
    });
    // Handled here too: a rejection must not count as unhandled while time is stepped.
    watched.catch(() => undefined);
    for (let i = 0; !done; i++) {
      if (i > 10_000) throw new Error('did not settle');
      await this.time.advance(5);
      await new Promise<void>((r) => setImmediate(r));
    }
    return watched;
  }

  /** A value written on one replica only (what a write that reached only it leaves). */
  async putOn(id: string, key: string, value: string): Promise<void> {
    const write = { value: enc.encode(value), contentType: 'text/plain', deleted: false };
    await this.nodes.get(id)!.replica.coordinate(this.ring.partitionOf(key), key, {}, write, this.time.now());
  }

  /** A write that reached the given replicas (all of them by default). */
  async putAll(key: string, value: string, on: readonly string[] = this.ids): Promise<void> {
    const p = this.ring.partitionOf(key);
    const write = { value: enc.encode(value), contentType: 'text/plain', deleted: false };
    const { object } = await this.nodes.get(on[0]!)!.replica.coordinate(p, key, {}, write, this.time.now());
    for (const id of on.slice(1)) await this.nodes.get(id)!.replica.apply(p, key, object);
  }

  async values(id: string, key: string): Promise<string[]> {
    const o = await this.nodes.get(id)!.replica.read(this.ring.partitionOf(key), key);
    return o ? o.siblings.filter((s) => !s.deleted).map((s) => dec.decode(s.value)) : [];
  }
}

/** A short tombstone grace, so a simulation can outlast it (the default is a day). */
const GRACE_MS = 10_000;
const KEY = 'cart:42';

/** A 4-node cluster-sim (N = 3, so one node is a fallback for each key) reaping after GRACE_MS. */
function clusterWithGrace(seed: number): SimCluster {
  const sc = new SimCluster({ seed, nodes: 4, n: 3, r: 2, w: 2, hintedHandoff: true, antiEntropyIntervalMs: 1000 });
  sc.nodes.forEach((n, i) => {
    sc.nodes[i] = new SimClusterNode(n.id, n.address, { ...n.init, tombstoneGraceMs: GRACE_MS });
  });
  return sc;
}

/**
 * KEY's owners (the primary coordinates and reaps; the lagger misses the live write) and the
 * fallback that stands in for the lagger; on return the fallback holds v1 and a hint for the
 * lagger, which is up again, and every owner holds the same tombstone of a delete made with
 * v1's context and acknowledged by all three. `meanwhile` runs before the lagger comes back.
 */
async function deleteWhileFallbackHoldsV1(
  sc: SimCluster,
  meanwhile: (roles: { lagger: string; fallback: string }) => Promise<void>,
): Promise<{ p: number; owners: string[]; primary: string; fallback: string }> {
  const ring = sc.node('n1').c.membership.ring();
  const p = ring.partitionOf(KEY);
  const owners = [...ring.preferenceList(p)];
  const [primary, , lagger] = owners as [string, string, string];
  const fallback = ring.fullOrder(p).find((id) => !owners.includes(id))!;
  const sees = (who: string, id: string, up: boolean) => sc.node(who).c.membership.isUp(id) === up;

  await sc.crash(lagger);
  await sc.runUntil('lagger seen down', () => sc.nodes.every((n) => !n.up || sees(n.id, lagger, false)));
  await sc.put(primary, KEY, 'v1');
  expect(await sc.local(fallback, KEY)).toEqual(['v1']);
  expect(sc.node(fallback).c.replica.pendingHints).toBe(1);

  await meanwhile({ lagger, fallback });
  await sc.startNode(sc.node(lagger));
  await sc.runUntil('owners see each other', () => owners.every((x) => owners.every((y) => sees(x, y, true))));

  const got = await sc.get(primary, KEY);
  expect(got.values).toEqual(['v1']);
  await sc.del(primary, KEY, { context: got.context!, w: 3 });
  expect((await sc.get(primary, KEY, { r: 3 })).values).toEqual([]);
  return { p, owners, primary, fallback };
}

/** The key stays deleted on every node, and its tombstone is reaped in the end. */
async function expectDeletedThenReaped(sc: SimCluster, p: number, primary: string): Promise<void> {
  expect((await sc.get(primary, KEY, { r: 3 })).values).toEqual([]);
  for (const n of sc.nodes) expect(await sc.local(n.id, KEY)).toEqual([]);
  // Once no copy older than the tombstone is left anywhere, it is reaped after all.
  await sc.runUntil(
    'tombstone reaped everywhere',
    async () => {
      for (const n of sc.nodes) if ((await n.c.replica.read(p, KEY)) !== undefined) return false;
      return true;
    },
    60_000,
  );
}

describe('tombstone reaping with a copy outside the preference list (cluster-sim)', () => {
  it('a fallback that held an older live copy and was down longer than the grace does not bring a deleted key back', async () => {
    const sc = clusterWithGrace(51);
    try {
      await sc.start();
      // The fallback goes down with its hint before delivering it.
      const { p, primary, fallback } = await deleteWhileFallbackHoldsV1(sc, ({ fallback }) => sc.crash(fallback));
      // Well past the grace, every owner up and holding the tombstone: reaping passes run.
      for (let i = 0; i < 300; i++) await sc.step(100);

      // The fallback comes back and hands its copy to the lagger (hint) and the owners (stray).
      await sc.startNode(sc.node(fallback));
      await sc.waitConverged();
      await sc.runUntil('hint delivered', () => sc.node(fallback).c.replica.pendingHints === 0);
      for (let i = 0; i < 100; i++) await sc.step(100);
      await expectDeletedThenReaped(sc, p, primary);
    } finally {
      await sc.stop();
    }
  });

  it('a fallback that is up but cannot reach the owner it holds a hint for does not bring a deleted key back', async () => {
    const sc = clusterWithGrace(52);
    try {
      await sc.start();
      // The fallback stays up, but is cut off from the lagger alone: its hint waits.
      const { p, primary, fallback } = await deleteWhileFallbackHoldsV1(sc, async ({ lagger, fallback }) => {
        sc.sim.net.cut(sc.node(fallback).address, sc.node(lagger).address);
      });
      for (let i = 0; i < 300; i++) await sc.step(100);
      expect(sc.node(fallback).c.replica.pendingHints).toBe(1);

      sc.sim.net.heal();
      await sc.runUntil('hint delivered', () => sc.node(fallback).c.replica.pendingHints === 0);
      for (let i = 0; i < 100; i++) await sc.step(100);
      await expectDeletedThenReaped(sc, p, primary);
    } finally {
      await sc.stop();
    }
  });
});

describe('exchanges on hand-wired replicas', () => {
  it('repairs a key that starts with U+FEFF (a BOM) like any other, and the keys batched with it', async () => {
    const c = new HandWired(['a', 'b']);
    try {
      await c.start();
      // A valid key (SPEC §2: any UTF-8 string of 1..512 bytes) whose first character is
      // U+FEFF, and a plain one; both written on a only.
      const bom = '\uFEFFcart:7';
      await c.putOn('a', bom, 'v1');
      await c.putOn('a', 'plain', 'v2');

      // One exchange, a to b, brings b both keys (one repair batch).
      const ab = await c.settle(c.nodes.get('a')!.ae.exchangeWith('b'));
      expect([ab.outcome, ab.error]).toEqual(['repaired', undefined]);
      expect(await c.values('b', bom)).toEqual(['v1']);
      expect(await c.values('b', 'plain')).toEqual(['v2']);
      // The BOM-less twin key was never written anywhere.
      expect(await c.values('b', 'cart:7')).toEqual([]);
      // Converged: the way back finds nothing to do.
      expect((await c.settle(c.nodes.get('b')!.ae.exchangeWith('a'))).outcome).toBe('identical');
    } finally {
      await c.stop();
    }
  });
});

describe('scheduled rounds on hand-wired replicas', () => {
  it('a peer that refuses every repair (its disk is full) does not stop the others from exchanging with each other', async () => {
    // At most 4 differing keys per exchange, so an exchange with b, which lacks 10 keys, is
    // cut short every time.
    const c = new HandWired(['a', 'b', 'c'], { maxKeysPerExchange: 4, batchSize: 4, continueAfterMs: 200 });
    try {
      await c.start();
      for (let i = 0; i < 10; i++) await c.putAll(`k${i}`, 'v', ['a', 'c']);
      // b answers every comparison but cannot store anything.
      const handlers = new Map(c.nodes.get('b')!.ae.handlers());
      handlers.set('aae-repair', async () => {
        throw new RingkvError('UNAVAILABLE', 'ENOSPC: no space left on device (provoked by the test)');
      });
      c.net.register('b:7000', handlers);
      const run = async (ms: number): Promise<void> => {
        for (let t = 0; t < ms; t += 50) {
          await c.time.advance(50);
          await new Promise<void>((r) => setImmediate(r));
        }
      };
      for (const id of ['a', 'c']) await c.nodes.get(id)!.ae.start();
      await run(10_000);

      // Then a write that reaches a only: a and c differ by one key, which b has nothing to do
      // with. a and c still exchange every second or so; one of their exchanges repairs it.
      await c.putOn('a', 'only-a', 'v1');
      await run(60_000);
      expect(await c.values('c', 'only-a')).toEqual(['v1']);
    } finally {
      await c.stop();
    }
  });
});
