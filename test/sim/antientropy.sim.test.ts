/**
 * Anti-entropy on hand-wired replicas: LocalReplica + MemoryStore + AntiEntropy per node, a
 * fixed ring behind a MembershipView stub, one MemoryNetwork, one ManualTime and a seeded
 * Random. Each node's outgoing traffic goes through a counting wrapper, so the tests can see
 * how many messages and bytes an exchange cost, and inject writes "while the exchange runs".
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AntiEntropy, type AntiEntropyInit, type ExchangeResult } from '../../src/antientropy/index.js';
import * as aae from '../../src/antientropy/messages.js';
import { RingkvError } from '../../src/errors.js';
import type { MemberRecord, MembershipView } from '../../src/membership/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { LocalReplica } from '../../src/replica/local-replica.js';
import { buildRing } from '../../src/ring/index.js';
import type { Ring } from '../../src/ring/types.js';
import { ManualTime, seededRandom } from '../../src/runtime/index.js';
import { MemoryStore, objectKey, parseObjectKey, type SublevelStore } from '../../src/storage/index.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import type { PeerAddress, SendOptions, Transport } from '../../src/transport/transport.js';
import { decodeObject, encodeObject, isDeleted, sameVersion, type VersionedObject } from '../../src/version/index.js';
import { RottableStore, rotStoredObject } from '../helpers/rot.js';
import { SimCluster, type SimClusterNode } from './cluster-sim.js';
import { forEachSeed } from './harness.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const FILE = 'test/sim/antientropy.sim.test.ts';

/** A Transport wrapper that counts traffic and can run a hook before a send leaves. */
class Wire implements Transport {
  messages = 0;
  bytesOut = 0;
  bytesIn = 0;
  readonly routes = new Map<string, number>();
  /** Peers this node opened an exchange with (aae-root sent). */
  readonly exchangedWith = new Set<PeerAddress>();
  before: ((route: string, to: PeerAddress) => Promise<void> | void) | undefined;

  constructor(private readonly inner: Transport) {}

  async send(to: PeerAddress, route: string, body: Uint8Array, opts: SendOptions): Promise<Uint8Array> {
    await this.before?.(route, to);
    this.messages++;
    this.bytesOut += body.length;
    this.routes.set(route, (this.routes.get(route) ?? 0) + 1);
    if (route === 'aae-root') this.exchangedWith.add(to);
    const reply = await this.inner.send(to, route, body, opts);
    this.bytesIn += reply.length;
    return reply;
  }

  reset(): void {
    this.messages = 0;
    this.bytesOut = 0;
    this.bytesIn = 0;
    this.routes.clear();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A replica for a throwaway tree over a node's store: it must not touch the node's caches. */
class LookOnlyReplica extends LocalReplica {
  override forgetCached(): void {}
}

interface TestNode {
  readonly id: string;
  readonly address: string;
  readonly store: SublevelStore;
  readonly replica: LocalReplica;
  readonly ae: AntiEntropy;
  readonly metrics: Metrics;
  readonly wire: Wire;
  ring: Ring;
}

interface ClusterOptions {
  readonly ids?: readonly string[];
  readonly n?: number;
  readonly partitionBits?: number;
  readonly ae?: Partial<AntiEntropyInit>;
  /** Each node's store has an object read cache, and can be damaged beneath it. */
  readonly rottable?: boolean;
}

class AaeCluster {
  readonly time = new ManualTime();
  readonly net = new MemoryNetwork(this.time);
  readonly random;
  readonly ring: Ring;
  readonly down = new Set<string>();
  readonly nodes = new Map<string, TestNode>();
  private readonly records = new Map<string, MemberRecord>();

  constructor(
    readonly seed: number,
    readonly opts: ClusterOptions = {},
  ) {
    this.random = seededRandom(seed);
    const ids = opts.ids ?? ['a', 'b', 'c'];
    this.ring = buildRing(
      ids.map((id) => ({ id, zone: id, weight: 1 })),
      { n: opts.n ?? 3, ...(opts.partitionBits === undefined ? {} : { partitionBits: opts.partitionBits }) },
    );
    for (const id of ids) {
      this.records.set(id, { id, address: `${id}:7000`, zone: id, weight: 1, state: 'active', incarnation: 1, heartbeat: 1 });
    }
  }

  view(id: string, node: () => TestNode): MembershipView {
    return {
      self: id,
      ring: () => node().ring,
      pendingRing: () => node().ring,
      member: (m) => this.records.get(m),
      isUp: (m) => m === id || !this.down.has(m),
      statuses: () => [],
      onChange: () => () => undefined,
    };
  }

  async start(): Promise<void> {
    for (const id of this.records.keys()) {
      const store = this.opts.rottable ? new RottableStore() : new MemoryStore();
      await store.open();
      const random = seededRandom(this.random.int(2 ** 32));
      const log = silentLogger();
      const replica = new LocalReplica({ store, random, log }, { actor: `${id}.e1` });
      await replica.start();
      const metrics = new Metrics(id);
      const address = `${id}:7000`;
      const wire = new Wire(this.net.transport(address));
      let self: TestNode | undefined;
      const membership = this.view(id, () => self!);
      const ae = new AntiEntropy(
        { store, replica, membership, transport: wire, clock: this.time, timers: this.time, random, log, metrics },
        { timeoutMs: 1000, intervalMs: 1000, ...this.opts.ae },
      );
      self = { id, address, store, replica, ae, metrics, wire, ring: this.ring };
      this.nodes.set(id, self);
      this.net.register(address, ae.handlers());
      await ae.rebuild();
    }
  }

  async stop(): Promise<void> {
    for (const n of this.nodes.values()) {
      await n.ae.stop();
      await n.wire.close();
      await n.store.close();
    }
  }

  node(id: string): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Let one step of simulated time pass, and the memory store's real callbacks run. */
  async step(ms = 5): Promise<void> {
    await this.time.advance(ms);
    await new Promise<void>((r) => setImmediate(r));
  }

  async settle<T>(p: Promise<T>, maxMs = 600_000): Promise<T> {
    let done = false;
    const watched = p.finally(() => {
      done = true;
    });
    // Handled here too: a rejection must not count as unhandled while time is stepped.
    watched.catch(() => undefined);
    const start = this.time.now();
    while (!done) {
      if (this.time.now() - start > maxMs) throw new Error(`seed ${this.seed}: did not settle within ${maxMs} ms`);
      await this.step();
    }
    return watched;
  }

  exchange(from: string, to: string): Promise<ExchangeResult> {
    return this.settle(this.node(from).ae.exchangeWith(to));
  }

  partitionOf(key: string): number {
    return this.ring.partitionOf(key);
  }

  primary(key: string): string {
    return this.ring.preferenceList(this.partitionOf(key))[0]!;
  }

  /** A new version minted on one replica only (what a write that reached only it leaves). */
  async put(id: string, key: string, value: string, context = {}): Promise<VersionedObject> {
    const { object } = await this.node(id).replica.coordinate(
      this.partitionOf(key),
      key,
      context,
      { value: enc.encode(value), contentType: 'text/plain', deleted: false },
      this.time.now(),
    );
    return object;
  }

  /** A write that reached every replica. */
  async putAll(key: string, value: string): Promise<VersionedObject> {
    const ids = [...this.nodes.keys()];
    const current = await this.read(ids[0]!, key);
    const obj = await this.put(ids[0]!, key, value, current?.clock ?? {});
    for (const id of ids.slice(1)) await this.node(id).replica.apply(this.partitionOf(key), key, obj);
    return obj;
  }

  /** A delete minted on `via` (with its current context) and copied to `to`. */
  async del(via: string, key: string, to: readonly string[]): Promise<VersionedObject> {
    const current = await this.read(via, key);
    const { object: obj } = await this.node(via).replica.coordinate(
      this.partitionOf(key),
      key,
      current?.clock ?? {},
      { value: new Uint8Array(0), contentType: 'text/plain', deleted: true },
      this.time.now(),
    );
    for (const id of to) await this.node(id).replica.apply(this.partitionOf(key), key, obj);
    return obj;
  }

  read(id: string, key: string): Promise<VersionedObject | undefined> {
    return this.node(id).replica.read(this.partitionOf(key), key);
  }

  async values(id: string, key: string): Promise<string[]> {
    const o = await this.read(id, key);
    return o ? o.siblings.filter((s) => !s.deleted).map((s) => dec.decode(s.value)).sort() : [];
  }

  /** Everything a node stores. */
  async objects(id: string): Promise<Map<string, VersionedObject>> {
    const out = new Map<string, VersionedObject>();
    for await (const [k, v] of this.node(id).store.entries('obj')) out.set(parseObjectKey(k).key, decodeObject(v));
    return out;
  }

  /** Every node stores the same keys at the same versions, and has the same leaves. */
  async converged(): Promise<boolean> {
    const ids = [...this.nodes.keys()];
    const first = await this.objects(ids[0]!);
    const leaves0 = Buffer.from(this.node(ids[0]!).ae.tree!.leaves.buffer);
    for (const id of ids.slice(1)) {
      const other = await this.objects(id);
      if (other.size !== first.size) return false;
      for (const [k, o] of first) {
        const x = other.get(k);
        if (!x || !sameVersion(o, x)) return false;
      }
      if (!leaves0.equals(Buffer.from(this.node(id).ae.tree!.leaves.buffer))) return false;
    }
    return true;
  }

  /** The node's incremental tree equals one rebuilt from its store by a fresh scan. */
  async treeMatchesStore(id: string): Promise<boolean> {
    const n = this.node(id);
    const fresh = new AntiEntropy(
      {
        store: n.store,
        replica: new LookOnlyReplica({ store: n.store, random: seededRandom(0), log: silentLogger() }, { actor: 'x' }),
        membership: this.view(id, () => n),
        transport: n.wire,
        clock: this.time,
        timers: this.time,
        random: seededRandom(0),
        log: silentLogger(),
        metrics: new Metrics(`${id}-check`),
      },
      { reaper: false },
    );
    await fresh.rebuild();
    return Buffer.from(fresh.tree!.leaves.buffer).equals(Buffer.from(n.ae.tree!.leaves.buffer));
  }

  async repairedTotal(): Promise<number> {
    let sum = 0;
    for (const n of this.nodes.values()) sum += (await n.metrics.aaeKeysRepaired.get()).values[0]?.value ?? 0;
    return sum;
  }

  async exchangesBy(id: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const v of (await this.node(id).metrics.aaeExchanges.get()).values) out[String(v.labels.outcome)] = v.value;
    return out;
  }

  resetWires(): void {
    for (const n of this.nodes.values()) n.wire.reset();
  }
}

let cluster: AaeCluster | undefined;
async function make(seed: number, opts: ClusterOptions = {}): Promise<AaeCluster> {
  await cluster?.stop();
  cluster = new AaeCluster(seed, opts);
  await cluster.start();
  return cluster;
}

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

describe('anti-entropy exchange', () => {
  it('repairs exactly the diverged keys, on exactly the stale replicas, and converges', async () => {
    await forEachSeed(
      3,
      async (seed) => {
        const c = await make(seed);
        for (let i = 0; i < 300; i++) await c.putAll(`base-${i}`, `v${i}`);
        for (let i = 0; i < 50; i++) await c.put('a', `only-a-${i}`, 'a');
        for (let i = 0; i < 30; i++) await c.put('b', `only-b-${i}`, 'b');
        for (let i = 0; i < 20; i++) {
          const cur = (await c.read('c', `base-${i}`))!;
          await c.put('c', `base-${i}`, `c-update-${i}`, cur.clock);
        }
        expect(await c.converged()).toBe(false);

        const ab = await c.exchange('a', 'b');
        expect(ab).toMatchObject({ outcome: 'repaired', keysDiffering: 80, keysRepaired: 80, truncated: false });
        const bc = await c.exchange('b', 'c');
        expect(bc).toMatchObject({ outcome: 'repaired', keysDiffering: 100, keysRepaired: 100 });
        const ac = await c.exchange('a', 'c');
        expect(ac).toMatchObject({ outcome: 'repaired', keysDiffering: 20, keysRepaired: 20 });

        // 100 diverged keys, each written to the 2 replicas that lacked it: 200 copies, not the data set.
        expect(await c.repairedTotal()).toBe(200);
        expect(await c.converged()).toBe(true);
        for (const id of ['a', 'b', 'c']) expect(await c.treeMatchesStore(id)).toBe(true);
        for (let i = 0; i < 20; i++) expect(await c.values('a', `base-${i}`)).toEqual([`c-update-${i}`]);

        // Converged replicas: the next round is one root message each, and repairs nothing.
        c.resetWires();
        for (const [x, y] of [
          ['a', 'b'],
          ['b', 'c'],
          ['c', 'a'],
        ] as const) {
          expect((await c.exchange(x, y)).outcome).toBe('identical');
        }
        for (const n of c.nodes.values()) expect(n.wire.messages).toBe(1);
        expect(await c.repairedTotal()).toBe(200);
        expect(await c.exchangesBy('a')).toEqual({ repaired: 2, identical: 1 });
      },
      { file: FILE },
    );
  });

  it('costs identical replicas one small round trip (root only)', async () => {
    const c = await make(11);
    for (let i = 0; i < 1000; i++) await c.putAll(`k${i}`, `v${i}`);
    c.resetWires();
    const r = await c.exchange('a', 'b');
    const w = c.node('a').wire;
    expect(r.outcome).toBe('identical');
    expect(r.partitions).toBe(65536);
    expect(w.messages).toBe(1);
    expect([...w.routes.keys()]).toEqual(['aae-root']);
    // 32-hex ring checksum + sender id + root varint out, a status byte back.
    expect(w.bytesOut).toBeLessThanOrEqual(45);
    expect(w.bytesIn).toBe(1);
    // (settle() steps time in 5 ms increments)
    expect(c.node('a').ae.verificationAge()).toBeLessThan(0.1);
    expect(c.node('b').ae.verificationAge()).toBeLessThan(0.1); // the responder verified too
  });

  it('keeps concurrent versions as siblings on both sides (never overwrites)', async () => {
    const c = await make(5);
    await c.put('a', 'cart', 'apple');
    await c.put('b', 'cart', 'pear');
    await c.putAll('shared', 'v0');
    const base = (await c.read('a', 'shared'))!;
    await c.put('a', 'shared', 'from-a', base.clock);
    await c.put('b', 'shared', 'from-b', base.clock);

    const r = await c.exchange('a', 'b');
    expect(r.keysDiffering).toBe(2);
    expect(r.keysRepaired).toBe(4); // both keys, both sides stale
    for (const id of ['a', 'b']) {
      expect(await c.values(id, 'cart')).toEqual(['apple', 'pear']);
      expect(await c.values(id, 'shared')).toEqual(['from-a', 'from-b']);
    }
    expect(sameVersion((await c.read('a', 'cart'))!, (await c.read('b', 'cart'))!)).toBe(true);
    expect((await c.exchange('a', 'b')).outcome).toBe('identical');
  });

  it('a key written during an exchange is merged, not repaired again and again', async () => {
    const c = await make(7);
    for (let i = 0; i < 100; i++) await c.putAll(`k${i}`, 'v');
    const a = c.node('a');
    /** A key in the same partition as `key`: the exchange compares that partition's keys. */
    const near = (key: string, prefix: string): string => {
      for (let i = 0; ; i++) if (c.partitionOf(`${prefix}${i}`) === c.partitionOf(key)) return `${prefix}${i}`;
    };

    // Variant 1: the write's replication reaches b after the key lists, before the fetch.
    await c.put('a', 'x0', 'only on a');
    const w1 = near('x0', 'w1-');
    let written: VersionedObject | undefined;
    a.wire.before = async (route) => {
      if (route === 'aae-root' && !written) written = await c.put('a', w1, 'in flight');
      if (route === 'aae-fetch' && written) await c.node('b').replica.apply(c.partitionOf(w1), w1, written);
    };
    const r1 = await c.exchange('a', 'b');
    a.wire.before = undefined;
    // w1 differed in the key lists, but had become equal by the time it was compared.
    expect(r1).toMatchObject({ keysDiffering: 2, keysRepaired: 1 });

    // Variant 2: the replication arrives after the exchange already pushed the key.
    await c.put('a', 'x1', 'only on a');
    const w2 = near('x1', 'w2-');
    let late: VersionedObject | undefined;
    a.wire.before = async (route) => {
      if (route === 'aae-root' && !late) late = await c.put('a', w2, 'in flight');
    };
    const r2 = await c.exchange('a', 'b');
    a.wire.before = undefined;
    expect(r2).toMatchObject({ keysDiffering: 2, keysRepaired: 2 }); // x1, and w2 pushed once
    const replicated = await c.node('b').replica.apply(c.partitionOf(w2), w2, late!);
    expect(replicated.changed).toBe(false); // the late replica write is a no-op

    // Variant 3: the peer's copy is newer only because a write is in flight to us.
    await c.put('a', 'x2', 'only on a');
    const w3 = near('x2', 'w3-');
    await c.putAll(w3, 'old');
    let newer: VersionedObject | undefined;
    a.wire.before = async (route) => {
      if (route === 'aae-keys' && !newer) newer = await c.put('b', w3, 'new', (await c.read('b', w3))!.clock);
    };
    const r3 = await c.exchange('a', 'b');
    a.wire.before = undefined;
    expect(r3).toMatchObject({ keysDiffering: 2, keysRepaired: 2 }); // x2 to b, w3's new version to a
    expect((await c.node('a').replica.apply(c.partitionOf(w3), w3, newer!)).changed).toBe(false);
    expect(await c.values('a', w3)).toEqual(['new']);

    // No repair storm afterwards.
    for (let i = 0; i < 3; i++) expect((await c.exchange('a', 'b')).outcome).toBe('identical');
    expect(await c.repairedTotal()).toBe(5);
  });

  it('does not scan a partition whose replicas converged after the comparison (a write that was in flight)', async () => {
    const c = await make(13, { ae: { partitionsPerRequest: 1 } });
    for (let i = 0; i < 100; i++) await c.putAll(`k${i}`, 'v');
    // Two keys on a only, in different partitions: the exchange finds both partitions
    // differing, then lists keys one partition per request.
    const first = 'lost';
    let second = '';
    for (let i = 0; !second; i++) if (c.partitionOf(`inflight-${i}`) > c.partitionOf(first)) second = `inflight-${i}`;
    await c.put('a', first, 'missed by b');
    const inflight = await c.put('a', second, 'replica write still on its way to b');
    const a = c.node('a');
    await c.step(10_000); // so that "verified by this exchange" shows in the age
    c.resetWires();
    a.wire.before = async (route) => {
      // While the first partition's keys are compared, the second key's replica write lands.
      if (route === 'aae-keys') await c.node('b').replica.apply(c.partitionOf(second), second, inflight);
    };
    const r = await c.exchange('a', 'b');
    a.wire.before = undefined;
    expect(r).toMatchObject({ outcome: 'repaired', partitionsDiffering: 2, keysDiffering: 1, keysRepaired: 1 });
    // The second partition was compared again (one more aae-leaves) and not listed or scanned.
    expect(a.wire.routes.get('aae-leaves')).toBe(2);
    expect(a.wire.routes.get('aae-keys')).toBe(1);
    expect(await c.values('b', first)).toEqual(['missed by b']);
    // Both partitions count as verified: nothing is left for a next round.
    expect(r.truncated).toBe(false);
    expect(a.ae.verificationAge()).toBeLessThan(0.1);
    expect((await c.exchange('a', 'b')).outcome).toBe('identical');
  });

  it('stops at maxKeysPerExchange, paces keys with the token bucket, and resumes with the same peer', async () => {
    const c = await make(3, { ae: { maxKeysPerExchange: 100, keysPerSecond: 50, batchSize: 25, reaper: false } });
    for (let i = 0; i < 250; i++) await c.put('a', `k${i}`, 'v');
    const a = c.node('a');

    const t0 = c.time.now();
    const r1 = (await c.settle(a.ae.runOnce()))!;
    expect(r1).toMatchObject({ peer: 'b', outcome: 'partial', truncated: true, keysRepaired: 100 });
    // Burst of 50, then 50 keys at 50/s: at least a second of simulated time.
    expect(c.time.now() - t0).toBeGreaterThanOrEqual(1000);

    const r2 = (await c.settle(a.ae.runOnce()))!;
    expect(r2).toMatchObject({ peer: 'b', outcome: 'partial', keysRepaired: 100 });
    const r3 = (await c.settle(a.ae.runOnce()))!;
    expect(r3).toMatchObject({ peer: 'b', outcome: 'repaired', keysRepaired: 50, truncated: false });
    const r4 = (await c.settle(a.ae.runOnce()))!;
    expect(r4).toMatchObject({ peer: 'c', outcome: 'partial' }); // round-robin moves on once b is done
    expect(await c.exchangesBy('a')).toEqual({ partial: 3, repaired: 1 });
  });

  it('skips the exchange when the ring checksums differ', async () => {
    const c = await make(9);
    await c.put('a', 'k', 'v');
    c.node('c').ring = buildRing(
      ['a', 'b', 'c'].map((id) => ({ id, zone: id, weight: 1 })),
      { n: 2 },
    );
    c.resetWires();
    const r = await c.exchange('a', 'c');
    expect(r.outcome).toBe('ring_mismatch');
    expect(c.node('a').wire.messages).toBe(1);
    expect(await c.read('c', 'k')).toBeUndefined();
    expect(await c.exchangesBy('a')).toEqual({ ring_mismatch: 1 });
  });

  it('fails cleanly when the peer is unreachable, and repairs after healing', async () => {
    const c = await make(13);
    await c.put('a', 'k', 'v');
    c.net.isolate('b:7000');
    const r = await c.exchange('a', 'b');
    expect(r.outcome).toBe('failed');
    c.net.heal();
    expect((await c.exchange('a', 'b')).keysRepaired).toBe(1);
    expect(await c.exchangesBy('a')).toEqual({ failed: 1, repaired: 1 });
  });

  it('resets a leaf that disagrees with the store, after seeing it twice with no write between', async () => {
    const c = await make(17, { partitionBits: 8 });
    for (let i = 0; i < 50; i++) await c.putAll(`k${i}`, 'v');
    const a = c.node('a');
    const p = c.partitionOf('k3');
    const good = a.ae.tree!.leaf(p);
    a.ae.tree!.setLeaf(p, good ^ 0x1234);

    const r1 = await c.exchange('a', 'b');
    expect(r1).toMatchObject({ partitionsDiffering: 1, keysDiffering: 0, keysRepaired: 0 });
    expect(a.ae.tree!.leaf(p)).not.toBe(good); // once is not enough: a write may be in flight
    await c.exchange('a', 'b');
    expect(a.ae.tree!.leaf(p)).toBe(good);
    expect((await c.exchange('a', 'b')).outcome).toBe('identical');
  });

  it('keeps the tree right when writes land during a rebuild', async () => {
    const c = await make(19, { partitionBits: 8 });
    for (let i = 0; i < 400; i++) await c.put('a', `k${i}`, 'v');
    const a = c.node('a');
    const writes = (async () => {
      for (let i = 0; i < 60; i++) {
        await c.put('a', `k${(i * 7) % 400}`, 'again', (await c.read('a', `k${(i * 7) % 400}`))!.clock);
        await c.put('a', `new${i}`, 'v');
      }
    })();
    await c.settle(Promise.all([a.ae.rebuild(), writes]));
    expect(await c.treeMatchesStore('a')).toBe(true);
  });

  it('tracks the age of the oldest verification', async () => {
    const c = await make(23, { partitionBits: 8 });
    await c.step(10_000);
    const a = c.node('a');
    expect(a.ae.verificationAge()).toBeGreaterThanOrEqual(10);
    await c.exchange('a', 'b');
    expect(a.ae.verificationAge()).toBeLessThan(0.1);
    expect((await a.metrics.aaeVerificationAge.get()).values[0]?.value).toBeLessThan(0.1);
    await c.step(5000);
    expect(a.ae.verificationAge()).toBeCloseTo(5, 1);
  });
});

describe('anti-entropy refuses what it cannot trust', () => {
  /** `b` serves its routes again with `route`'s reply passed through `edit` first. */
  function editReplies(c: AaeCluster, route: string, edit: (reply: Uint8Array) => Uint8Array): void {
    const handlers = new Map(c.node('b').ae.handlers());
    const real = handlers.get(route)!;
    handlers.set(route, async (body, from) => edit(await real(body, from)));
    c.net.register('b:7000', handlers);
  }

  const shortReplies: [string, (reply: Uint8Array) => Uint8Array, string][] = [
    [
      'aae-root',
      (r) => {
        const m = aae.decodeRootReply(r);
        return m.status === 'differ' ? aae.encodeRootReply({ status: 'differ', buckets: m.buckets.subarray(1) }) : r;
      },
      'bucket count mismatch',
    ],
    ['aae-leaves', (r) => aae.encodeLeavesReply(aae.decodeLeavesReply(r).subarray(1)), 'leaf reply length mismatch'],
    ['aae-keys', (r) => aae.encodeKeysReply(aae.decodeKeysReply(r).slice(1).map((m) => [...m])), 'key list reply length mismatch'],
    ['aae-fetch', (r) => aae.encodeFetchReply(aae.decodeFetchReply(r).slice(1)), 'fetch reply length mismatch'],
  ];
  for (const [route, edit, error] of shortReplies) {
    it(`an exchange whose peer answers ${route} with one item too few fails and changes nothing`, async () => {
      const c = await make(71);
      for (let i = 0; i < 20; i++) await c.put('a', `k${i}`, `v${i}`);
      editReplies(c, route, edit);
      const r = await c.exchange('a', 'b');
      expect(r.outcome).toBe('failed');
      expect(r.error).toContain(error);
      for (let i = 0; i < 20; i++) expect(await c.read('b', `k${i}`)).toBeUndefined();
      expect(await c.repairedTotal()).toBe(0);
      // The same exchange with honest replies repairs every key.
      c.net.register('b:7000', c.node('b').ae.handlers());
      expect((await c.exchange('a', 'b')).keysRepaired).toBe(20);
    });
  }

  it('a copy that rots while the node runs, then replaced by a write, leaves the tree matching the store', async () => {
    const c = await make(75);
    const first = await c.putAll('k', 'v');
    // Rot under the running node: its tree still holds the healthy copy's digest.
    await rotStoredObject(c.node('b').store, objectKey(c.partitionOf('k'), 'k'));
    const newer = (await c.node('a').replica.coordinate(c.partitionOf('k'), 'k', first.clock, { value: enc.encode('v2'), contentType: 'text/plain', deleted: false }, c.time.now())).object;
    expect((await c.node('b').replica.apply(c.partitionOf('k'), 'k', newer, [], true)).changed).toBe(true);
    expect(await c.values('b', 'k')).toEqual(['v2']);
    // The leaf is taken from the store again in the background: a few steps at most.
    for (let i = 0; i < 200 && !(await c.treeMatchesStore('b')); i++) await c.step();
    expect(await c.treeMatchesStore('b')).toBe(true);
    expect((await c.exchange('a', 'b')).outcome).toBe('identical');
  });

  it('before its tree is built, a node neither answers exchanges nor starts one', async () => {
    const c = await make(76);
    await c.putAll('k', 'v');
    const n = c.node('b');
    const cold = new AntiEntropy(
      {
        store: n.store,
        replica: n.replica,
        membership: c.view('b', () => n),
        transport: n.wire,
        clock: c.time,
        timers: c.time,
        random: seededRandom(1),
        log: silentLogger(),
        metrics: new Metrics('b-cold'),
      },
      { reaper: false },
    );
    const root = aae.encodeRootRequest({ checksum: c.ring.checksum, from: 'a', root: 0 });
    await expect(cold.handlers().get('aae-root')!(root, 'a:7000')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(cold.handlers().get('aae-leaves')!(aae.encodePartitionsRequest([0]), 'a:7000')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const r = await c.settle(cold.exchangeWith('a'));
    expect(r.outcome).toBe('failed');
    expect(r.error).toContain('tree not built');
    await cold.rebuild();
    expect(aae.decodeRootReply(await cold.handlers().get('aae-root')!(root, 'a:7000')).status).toBe('differ');
    await cold.stop();
  });

  it('refuses repair and reap items whose key is not in the partition they name, and stores nothing', async () => {
    const c = await make(72);
    const obj = await c.put('a', 'k', 'v');
    const right = c.partitionOf('k');
    const wrong = (right + 1) % c.ring.partitions;
    const handlers = c.node('b').ae.handlers();
    const items = aae.encodeObjectItems([{ partition: wrong, key: 'k', object: encodeObject(obj) }]);
    for (const route of ['aae-repair', 'aae-reap'])
      await expect(handlers.get(route)!(items, 'a:7000')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(await c.node('b').store.get('obj', objectKey(wrong, 'k'))).toBeUndefined();
    expect(await c.read('b', 'k')).toBeUndefined();
    // Named with its own partition, the same item is taken.
    const ok = aae.encodeObjectItems([{ partition: right, key: 'k', object: encodeObject(obj) }]);
    expect(aae.decodeFlags(await handlers.get('aae-repair')!(ok, 'a:7000'))).toEqual([true]);
    expect(await c.values('b', 'k')).toEqual(['v']);
  });

  it('refuses partitions outside the ring, and a fetch made under another ring', async () => {
    const c = await make(73);
    const handlers = c.node('b').ae.handlers();
    // The wire carries partitions as unsigned deltas: past the end is the only way out of range.
    for (const partitions of [[0, c.ring.partitions], [c.ring.partitions + 100]])
      for (const route of ['aae-leaves', 'aae-keys'])
        await expect(handlers.get(route)!(aae.encodePartitionsRequest(partitions), 'a:7000')).rejects.toMatchObject({
          code: 'BAD_REQUEST',
        });
    await expect(
      handlers.get('aae-fetch')!(aae.encodeFetchRequest(c.ring.checksum, [{ partition: c.ring.partitions, key: 'k' }]), 'a:7000'),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(handlers.get('aae-fetch')!(aae.encodeFetchRequest('another-ring', [{ partition: 0, key: 'k' }]), 'a:7000')).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });

  for (const rotten of ['b', 'a']) {
    it(`a copy that rots on disk (${rotten === 'b' ? "the peer's" : 'the initiator\'s'}) is rebuilt into the tree and replaced by an exchange, with the other keys repaired too`, async () => {
      const c = await make(74);
      await c.putAll('k', 'v');
      // A second key that only `a` has, so the same exchange has other work to do.
      await c.put('a', 'only-a', 'w');
      await rotStoredObject(c.node(rotten).store, objectKey(c.partitionOf('k'), 'k'));
      const { keys } = await c.node(rotten).ae.rebuild();
      expect(keys).toBe(rotten === 'a' ? 2 : 1);
      expect(await c.treeMatchesStore(rotten)).toBe(true);
      await expect(c.read(rotten, 'k')).rejects.toThrow(/corrupt object/);

      const r = await c.exchange('a', 'b');
      expect(r.outcome).toBe('repaired');
      expect(await c.values(rotten, 'k')).toEqual(['v']);
      expect(await c.values('b', 'only-a')).toEqual(['w']);
      // The tree followed the replacement exactly, and the pair is level again.
      expect(await c.treeMatchesStore(rotten)).toBe(true);
      expect((await c.exchange('a', 'b')).outcome).toBe('identical');
    });
  }
});

describe('anti-entropy verify sweep', () => {
  type Sweep = Awaited<ReturnType<AntiEntropy['verifySweep']>>;

  /** Partitions `n` has swept so far (its metric). */
  async function sweptBy(n: TestNode): Promise<number> {
    return (await n.metrics.aaeSweptPartitions.get()).values[0]?.value ?? 0;
  }

  /** Let `ms` of simulated time pass, then sweep `id` once. */
  async function sweepAfter(c: AaeCluster, id: string, ms: number): Promise<Sweep> {
    await c.time.advance(ms);
    return c.settle(c.node(id).ae.verifySweep());
  }

  /** Each key on its owners only, as the coordinator writes it. */
  async function putOnOwners(c: AaeCluster, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const [first, ...rest] = c.ring.preferenceList(c.partitionOf(`k${i}`));
      const obj = await c.put(first!, `k${i}`, 'v');
      for (const id of rest) await c.node(id).replica.apply(c.partitionOf(`k${i}`), `k${i}`, obj);
    }
  }

  /**
   * 20 keys only `a` holds, 5 repaired per exchange: `a`'s first scheduled round (after a
   * second) is cut short. `swept()` is how many partitions `a` has swept.
   */
  async function cutShort(seed: number): Promise<{ c: AaeCluster; a: TestNode; swept: () => Promise<number> }> {
    const c = await make(seed, { partitionBits: 4, ae: { verifyPeriodMs: 16_000, maxKeysPerExchange: 5 } });
    for (let i = 0; i < 20; i++) await c.put('a', `k${i}`, 'v');
    const a = c.node('a');
    const swept = (): Promise<number> => sweptBy(a);
    await c.time.advance(1000);
    expect((await c.settle(a.ae.runOnce()))?.truncated).toBe(true);
    return { c, a, swept };
  }

  it('finds a copy that rotted under the running node, with no write or restart, and the next exchange replaces it', async () => {
    // 16 partitions, all on every node; a quarter of them per second.
    const c = await make(76, { partitionBits: 4, ae: { verifyPeriodMs: 4000 } });
    for (let i = 0; i < 40; i++) await c.putAll(`k${i}`, 'v');
    await rotStoredObject(c.node('b').store, objectKey(c.partitionOf('k7'), 'k7'));
    // The gap the sweep closes: the tree still holds the healthy digest, so no exchange looks.
    expect((await c.exchange('a', 'b')).outcome).toBe('identical');
    expect(await c.treeMatchesStore('b')).toBe(false);

    const sweeps: Sweep[] = [];
    while (sweeps.length < 4 && !sweeps.some((r) => r.reset > 0)) sweeps.push(await sweepAfter(c, 'b', 1000));
    expect(sweeps.map((r) => r.partitions)).toEqual(sweeps.map(() => 4));
    expect(sweeps.map((r) => r.reset)).toEqual([...sweeps.slice(1).map(() => 0), 1]);
    expect(await c.treeMatchesStore('b')).toBe(true);
    expect((await c.node('b').metrics.aaeLeafResets.get()).values[0]?.value).toBe(1);
    expect(await sweptBy(c.node('b'))).toBe(4 * sweeps.length);

    const r = await c.exchange('a', 'b');
    expect(r).toMatchObject({ outcome: 'repaired', keysDiffering: 1, keysRepaired: 1 });
    expect(await c.values('b', 'k7')).toEqual(['v']);
    expect(await c.treeMatchesStore('b')).toBe(true);
    expect((await c.exchange('a', 'b')).outcome).toBe('identical');
  });

  it('after it found a damaged copy, a plain write of the key replaces the copy and keeps the tree right', async () => {
    const c = await make(83, { partitionBits: 4, ae: { verifyPeriodMs: 1000 } });
    let first: VersionedObject | undefined;
    for (let i = 0; i < 20; i++) {
      const obj = await c.putAll(`k${i}`, 'v');
      if (i === 5) first = obj;
    }
    await rotStoredObject(c.node('b').store, objectKey(c.partitionOf('k5'), 'k5'));
    expect((await sweepAfter(c, 'b', 1000)).reset).toBe(1);
    // A newer version arrives by ordinary replication. b's version cache knew the healthy copy;
    // the sweep made it forget, so the write reads the store and sees what it replaces.
    const newer = (await c.node('a').replica.coordinate(c.partitionOf('k5'), 'k5', first!.clock, { value: enc.encode('v2'), contentType: 'text/plain', deleted: false }, c.time.now())).object;
    expect((await c.node('b').replica.apply(c.partitionOf('k5'), 'k5', newer)).changed).toBe(true);
    for (let i = 0; i < 200 && !(await c.treeMatchesStore('b')); i++) await c.step();
    expect(await c.treeMatchesStore('b')).toBe(true);
    expect(await c.values('b', 'k5')).toEqual(['v2']);
    // Nothing more to find: no second reset for the same damage.
    expect((await sweepAfter(c, 'b', 1000)).reset).toBe(0);
  });

  it('a copy damaged beneath the store\'s read cache is found by the sweep and replaced by the exchange', async () => {
    const c = await make(84, { partitionBits: 4, ae: { verifyPeriodMs: 1000 }, rottable: true });
    for (let i = 0; i < 20; i++) await c.putAll(`k${i}`, 'v');
    const b = c.node('b');
    const at = objectKey(c.partitionOf('k9'), 'k9');
    expect(await c.values('b', 'k9')).toEqual(['v']); // read once: the store caches the bytes
    await (b.store as RottableStore).rotBeneathCache(at);
    expect((await sweepAfter(c, 'b', 1000)).reset).toBe(1);
    expect(await c.exchange('a', 'b')).toMatchObject({ outcome: 'repaired', keysRepaired: 1 });
    const [stored] = await b.store.getMany('obj', [at]);
    expect(decodeObject(stored!).siblings).toHaveLength(1);
    expect((await c.exchange('a', 'b')).outcome).toBe('identical');
  });

  it('a scheduled round sweeps before it exchanges, so one round finds and repairs the damage', async () => {
    const c = await make(77, { partitionBits: 4, ae: { verifyPeriodMs: 1000 } });
    for (let i = 0; i < 40; i++) await c.putAll(`k${i}`, 'v');
    await rotStoredObject(c.node('c').store, objectKey(c.partitionOf('k3'), 'k3'));
    // A whole period has passed: the round sweeps every partition.
    await c.time.advance(1000);
    const r = await c.settle(c.node('c').ae.runOnce());
    expect(r).toMatchObject({ outcome: 'repaired', keysRepaired: 1 });
    expect(await c.values('c', 'k3')).toEqual(['v']);
    expect(await c.treeMatchesStore('c')).toBe(true);
  });

  it('resets a leaf that drifted from the store (two scans agree), and leaves right leaves alone', async () => {
    const c = await make(78, { partitionBits: 4, ae: { verifyPeriodMs: 1000 } });
    for (let i = 0; i < 40; i++) await c.putAll(`k${i}`, 'v');
    const a = c.node('a');
    expect(await sweepAfter(c, 'a', 1000)).toMatchObject({ partitions: 16, keys: 40, reset: 0 });
    const p = c.partitionOf('k1');
    const good = a.ae.tree!.leaf(p);
    a.ae.tree!.setLeaf(p, good ^ 0x5a5a);
    expect(await sweepAfter(c, 'a', 1000)).toMatchObject({ partitions: 16, reset: 1 });
    expect(a.ae.tree!.leaf(p)).toBe(good);
  });

  it('reads every partition the node holds once per period, in order, its share of them for the time passed, then starts over', async () => {
    // Five nodes, N = 3: each holds about 3/5 of the 16 partitions.
    const c = await make(79, { ids: ['a', 'b', 'c', 'd', 'e'], partitionBits: 4, ae: { verifyPeriodMs: 3000 } });
    await putOnOwners(c, 100);
    const held = c.ring.partitionsOf('a');
    const stored = (await c.objects('a')).size;
    expect(held.length).toBeGreaterThan(3);
    expect(held.length).toBeLessThan(16);
    // No time passed: nothing owed.
    expect((await c.settle(c.node('a').ae.verifySweep())).partitions).toBe(0);
    const cycle: Sweep[] = [];
    for (let i = 0; i < 3; i++) cycle.push(await sweepAfter(c, 'a', 1000));
    // Consecutive slices of the node's partitions, covering each once.
    const read = cycle.flatMap((r) => held.slice(held.indexOf(r.first), held.indexOf(r.last) + 1));
    expect(read).toEqual([...held]);
    expect(cycle.reduce((n, r) => n + r.partitions, 0)).toBe(held.length);
    expect(cycle.reduce((n, r) => n + r.keys, 0)).toBe(stored);
    // The next period starts again from the first.
    expect((await sweepAfter(c, 'a', 1000)).first).toBe(held[0]);
  });

  it('is charged to the key-rate budget: a sweep of more keys than the budget waits for it', async () => {
    const c = await make(80, { partitionBits: 4, ae: { verifyPeriodMs: 1000, keysPerSecond: 10 } });
    for (let i = 0; i < 40; i++) await c.putAll(`k${i}`, 'v');
    await c.time.advance(1000);
    const started = c.time.now();
    expect((await c.settle(c.node('a').ae.verifySweep())).keys).toBe(40);
    // A burst of one second's budget (10 keys), then 30 more at 10 per second.
    expect(c.time.now() - started).toBeGreaterThanOrEqual(3000);
  });

  it('a sweep that fails (the store cannot be read) keeps its place, and the round still exchanges', async () => {
    const c = await make(82, { partitionBits: 4, ae: { verifyPeriodMs: 4000 } });
    for (let i = 0; i < 10; i++) await c.putAll(`k${i}`, 'v');
    await c.put('a', 'only-a', 'w');
    const b = c.node('b');
    const entries = b.store.entries.bind(b.store);
    let threw = false;
    b.store.entries = (...args) => {
      if (threw) return entries(...args);
      threw = true;
      throw new Error('disk gone');
    };
    await c.time.advance(1000);
    const r = await c.settle(b.ae.runOnce());
    expect(threw).toBe(true); // the sweep's scan failed
    expect(r).toMatchObject({ outcome: 'repaired' });
    expect(await c.values('b', 'only-a')).toEqual(['w']);
    expect(await sweptBy(b)).toBe(0);
    // The failed slice is read again next.
    expect(await sweepAfter(c, 'b', 1000)).toMatchObject({ first: c.ring.partitionsOf('b')[0], partitions: 4 });
  });

  it('a slice that cannot be read twice in a row is passed over, and the sweep goes on past it', async () => {
    const c = await make(87, { partitionBits: 4, ae: { verifyPeriodMs: 4000 } });
    for (let i = 0; i < 20; i++) await c.putAll(`k${i}`, 'v');
    const b = c.node('b');
    const entries = b.store.entries.bind(b.store);
    let failing = true;
    b.store.entries = (...args) => {
      if (failing) throw new Error('Corruption: bad block');
      return entries(...args);
    };
    await expect(sweepAfter(c, 'b', 1000)).rejects.toThrow(/Corruption/);
    // The second failure in a row passes over the slice (partitions 0-3, logged), reading nothing.
    expect(await sweepAfter(c, 'b', 1000)).toMatchObject({ partitions: 0 });
    failing = false;
    expect(await sweepAfter(c, 'b', 1000)).toMatchObject({ first: 4, last: 11, partitions: 8 });
  });

  it('makes up for time that piled up over the next rounds, two rounds\' share at a time', async () => {
    const c = await make(88, { partitionBits: 4, ae: { verifyPeriodMs: 8000 } });
    for (let i = 0; i < 20; i++) await c.putAll(`k${i}`, 'v');
    // A whole period without a sweep (stopped, say): 16 partitions owed, 4 per call at most.
    const calls: number[] = [];
    await c.time.advance(8000);
    for (let i = 0; i < 4; i++) calls.push((await c.settle(c.node('a').ae.verifySweep())).partitions);
    expect(calls).toEqual([4, 4, 4, 4]);
    expect((await c.settle(c.node('a').ae.verifySweep())).partitions).toBe(0);
  });

  it('sweeps when no co-replica is up, even after an exchange was cut short', async () => {
    const { c, a, swept } = await cutShort(89);
    c.down.add('b');
    c.down.add('c');
    await c.time.advance(1000);
    expect(await c.settle(a.ae.runOnce())).toBeUndefined(); // nobody to exchange with
    expect(await swept()).toBe(2);
  });

  it('skips rounds that continue a cut-short exchange: the time-based share waits for the next full round', async () => {
    const { c, a, swept } = await cutShort(85);
    expect(await swept()).toBe(1);
    await c.time.advance(1000);
    expect((await c.settle(a.ae.runOnce()))?.truncated).toBe(true);
    expect(await swept()).toBe(1);
    // Done catching up with that peer: the next full round sweeps what the time since owes.
    let rounds = 0;
    while ((await c.settle(a.ae.runOnce()))?.truncated === true && rounds++ < 10) await c.time.advance(1000);
    await c.time.advance(1000);
    const before = await swept();
    await c.settle(a.ae.runOnce());
    expect(await swept()).toBeGreaterThan(before);
  });

  it('stop() during the sweep ends the round: no exchange starts after it', async () => {
    const c = await make(86, { partitionBits: 4, ae: { verifyPeriodMs: 1000, keysPerSecond: 1 } });
    for (let i = 0; i < 40; i++) await c.putAll(`k${i}`, 'v');
    const a = c.node('a');
    await c.time.advance(1000);
    c.resetWires();
    const round = a.ae.runOnce();
    await c.step(10); // the sweep is waiting for the key-rate budget
    await a.ae.stop();
    expect(await round).toBeUndefined();
    expect(a.wire.routes.get('aae-root') ?? 0).toBe(0);
  });

  it('with verifyPeriodMs 0 it reads nothing, and the rotten copy stays out of sight', async () => {
    const c = await make(81, { partitionBits: 4, ae: { verifyPeriodMs: 0 } });
    for (let i = 0; i < 10; i++) await c.putAll(`k${i}`, 'v');
    await rotStoredObject(c.node('b').store, objectKey(c.partitionOf('k2'), 'k2'));
    expect(await sweepAfter(c, 'b', 1000)).toEqual({ partitions: 0, first: -1, last: -1, keys: 0, reset: 0 });
    expect((await c.settle(c.node('b').ae.runOnce()))?.outcome).toBe('identical');
  });
});

describe('anti-entropy lifecycle', () => {
  it('converges on its own timers, round-robin over co-replicas; stop() leaves no timer behind', async () => {
    await forEachSeed(
      2,
      async (seed) => {
        const c = await make(seed, { partitionBits: 8, ae: { intervalMs: 1000 } });
        for (let i = 0; i < 100; i++) await c.putAll(`k${i}`, 'v');
        for (let i = 0; i < 10; i++) {
          await c.put('a', `a${i}`, 'v');
          await c.put('b', `b${i}`, 'v');
          await c.put('c', `c${i}`, 'v');
        }
        for (const n of c.nodes.values()) {
          await n.ae.start();
          await n.ae.start(); // idempotent
        }
        let waited = 0;
        while (!(await c.converged())) {
          await c.step(100);
          waited += 100;
          if (waited > 30_000) throw new Error('did not converge within 30 s of simulated time');
        }
        // Each node has 2 co-replicas, and visits both.
        for (let i = 0; i < 50; i++) await c.step(100);
        for (const n of c.nodes.values()) {
          expect(n.wire.exchangedWith.size).toBe(2);
          expect((await c.exchangesBy(n.id)).identical ?? 0).toBeGreaterThan(0);
        }
        expect(await c.repairedTotal()).toBe(60); // 30 keys × 2 replicas each
        for (const n of c.nodes.values()) {
          await n.ae.stop();
          await n.ae.stop(); // idempotent
        }
        expect(c.time.pending()).toBe(0);
      },
      { file: FILE },
    );
  });

  it('continues a cut-short exchange after continueAfterMs instead of a full interval', async () => {
    const c = await make(43, { partitionBits: 8, ae: { intervalMs: 60_000, maxKeysPerExchange: 10, reaper: false } });
    for (let i = 0; i < 30; i++) await c.put('a', `k${i}`, 'v');
    const a = c.node('a');
    await a.ae.start();
    let t = 0;
    while (!a.wire.routes.has('aae-root')) {
      await c.step(500);
      t += 500;
    }
    expect(t).toBeGreaterThanOrEqual(45_000); // the first round waits a (jittered) interval
    for (let i = 0; i < 100; i++) await c.step(50);
    expect((await c.objects('b')).size).toBe(30); // three exchanges with b, about a second apart
    expect(await c.exchangesBy('a')).toEqual({ partial: 2, repaired: 1 });
    await a.ae.stop();
    expect(c.time.pending()).toBe(0);
  });

  it('stop() aborts an exchange in progress, including a token-bucket pause', async () => {
    const c = await make(29, { partitionBits: 8, ae: { keysPerSecond: 1, batchSize: 1, reaper: false } });
    for (let i = 0; i < 20; i++) await c.put('a', `k${i}`, 'v');
    const a = c.node('a');
    await a.ae.start();
    const running = a.ae.exchangeWith('b');
    for (let i = 0; i < 50; i++) await c.step(20);
    await c.settle(a.ae.stop());
    const r = await running;
    expect(r.outcome).toBe('failed');
    expect(c.time.pending()).toBe(0);
  });
});

describe('tombstone reaping', () => {
  const HOUR = 3_600_000;

  it('reaps only after every replica holds the tombstone and grace has passed; never resurrects', async () => {
    const c = await make(31, { partitionBits: 8, ae: { reaper: { graceMs: HOUR } } });
    for (let i = 0; i < 20; i++) await c.putAll(`keep${i}`, 'v');
    await c.putAll('gone', 'v1');
    await c.putAll('stale', 'v1');
    const ids = ['a', 'b', 'c'];
    const goneP = c.primary('gone');
    await c.del(goneP, 'gone', ids);
    // 'stale': one replica (not the primary) never got the delete and still holds the live value.
    const staleP = c.primary('stale');
    const lagger = ids.find((id) => id !== staleP)!;
    await c.del(staleP, 'stale', ids.filter((id) => id !== lagger));

    const reap = async (id: string) => (await c.settle(c.node(id).ae.reap()))!;
    const holders = async (key: string) => {
      const out: string[] = [];
      for (const id of ids) if (await c.read(id, key)) out.push(id);
      return out;
    };

    // Before the grace period: nothing.
    expect((await reap(goneP)).keys).toBe(0);
    expect(await holders('gone')).toEqual(ids);

    await c.time.advance(HOUR + 1);

    // A replica marked down: nothing.
    const other = ids.find((id) => id !== goneP)!;
    c.down.add(other);
    expect((await reap(goneP)).reaped).toBe(0);
    c.down.delete(other);
    // A replica up by the failure detector but unreachable: nothing.
    c.net.isolate(`${other}:7000`);
    expect((await reap(goneP)).reaped).toBe(0);
    c.net.heal();
    expect(await holders('gone')).toEqual(ids);

    // All replicas hold the same tombstone: reaped everywhere, trees follow.
    const pass = await reap(goneP);
    expect(pass.keys).toBeGreaterThanOrEqual(1);
    if (staleP !== goneP) await reap(staleP);
    expect(await holders('gone')).toEqual([]);
    expect(await holders('stale')).toEqual(ids); // the lagger's live copy blocked it
    for (const id of ids) expect(await c.treeMatchesStore(id)).toBe(true);

    // Exchanges: 'gone' never comes back; the 'stale' tombstone reaches the lagger.
    for (const [x, y] of [
      ['a', 'b'],
      ['b', 'c'],
      ['a', 'c'],
    ] as const) {
      await c.exchange(x, y);
    }
    expect(await holders('gone')).toEqual([]);
    expect(isDeleted((await c.read(lagger, 'stale'))!)).toBe(true);

    // Now every replica holds the same 'stale' tombstone, older than grace: reaped.
    await reap(staleP);
    expect(await holders('stale')).toEqual([]);
    for (const [x, y] of [
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'a'],
    ] as const) {
      expect((await c.exchange(x, y)).outcome).toBe('identical');
    }
    expect(await holders('gone')).toEqual([]);
    expect(await holders('stale')).toEqual([]);
    expect((await c.objects('a')).size).toBe(20);
  });

  it('a replica that refuses the reap keeps its tombstone, which comes back to the others and is reaped later; an unreadable copy is skipped', async () => {
    const c = await make(38, { partitionBits: 8, ae: { reaper: { graceMs: HOUR } } });
    const ids = ['a', 'b', 'c'];
    await c.putAll('gone', 'v1');
    const primary = c.primary('gone');
    await c.del(primary, 'gone', ids);
    // Another key whose primary is the same node, rotten on that node: the pass skips it.
    let rotten = '';
    for (let i = 0; rotten === ''; i++) if (c.primary(`r${i}`) === primary) rotten = `r${i}`;
    await c.putAll(rotten, 'v');
    await rotStoredObject(c.node(primary).store, objectKey(c.partitionOf(rotten), rotten));
    await c.time.advance(HOUR + 1);

    const refusing = ids.find((id) => id !== primary)!;
    const handlers = new Map(c.node(refusing).ae.handlers());
    handlers.set('aae-reap', async () => {
      throw new RingkvError('UNAVAILABLE', 'refused (provoked by the test)');
    });
    c.net.register(`${refusing}:7000`, handlers);
    const reap = async () => (await c.settle(c.node(primary).ae.reap()))!;
    const first = await reap();
    expect(first.keys).toBe(0);
    const holders = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const id of ids) if (await c.read(id, 'gone')) out.push(id);
      return out;
    };
    expect(await holders()).toEqual([refusing]);
    // Anti-entropy brings the tombstone back to the others: still deleted, never resurrected.
    for (const id of ids) if (id !== refusing) await c.exchange(refusing, id);
    expect(await holders()).toEqual(ids);
    for (const id of ids) expect(isDeleted((await c.read(id, 'gone'))!)).toBe(true);

    c.net.register(`${refusing}:7000`, c.node(refusing).ae.handlers());
    expect((await reap()).keys).toBe(1);
    expect(await holders()).toEqual([]);
  });

  it('only the primary initiates, and a scheduled round reaps once grace has passed', async () => {
    const c = await make(37, { partitionBits: 8, ae: { intervalMs: 1000, reaper: { graceMs: HOUR, intervalMs: 60_000 } } });
    await c.putAll('gone', 'v1');
    const p = c.primary('gone');
    await c.del(p, 'gone', ['a', 'b', 'c']);
    await c.time.advance(HOUR + 1);
    for (const id of ['a', 'b', 'c'].filter((x) => x !== p)) expect((await c.settle(c.node(id).ae.reap()))!.candidates).toBe(0);
    for (const n of c.nodes.values()) await n.ae.start();
    let waited = 0;
    while (await c.read('a', 'gone')) {
      await c.step(100);
      waited += 100;
      if (waited > 10_000) throw new Error('not reaped');
    }
    expect(await c.read('b', 'gone')).toBeUndefined();
    expect(await c.read('c', 'gone')).toBeUndefined();
  });
});

describe('anti-entropy on full simulated nodes (cluster-sim)', () => {
  /**
   * The node's AntiEntropy: NodeCore's own if it has one, else one attached here (its routes
   * added to the node's served handler map).
   */
  function antiEntropyOf(sc: SimCluster, n: SimClusterNode): AntiEntropy {
    const own = (n.c as unknown as { antiEntropy?: unknown }).antiEntropy;
    if (own instanceof AntiEntropy) return own;
    const ae = new AntiEntropy(
      {
        store: n.store,
        replica: n.c.replica,
        membership: n.c.membership,
        transport: sc.sim.net.transport(n.address),
        clock: sc.time,
        timers: sc.time,
        random: sc.sim.fork(),
        log: silentLogger(),
        metrics: n.metrics,
      },
      { intervalMs: 1000, timeoutMs: 1000 },
    );
    for (const [route, h] of ae.handlers()) n.c.handlers.set(route, h);
    return ae;
  }

  it('a replica cut off during writes and deletes converges after healing, with no client reading the keys', async () => {
    const sc = new SimCluster({ seed: 41, nodes: 3, hintedHandoff: false, antiEntropyIntervalMs: 1000 });
    try {
      await sc.start();
      const aes = sc.nodes.map((n) => antiEntropyOf(sc, n));
      for (const ae of aes) await sc.settle(ae.start());
      for (let i = 0; i < 10; i++) await sc.put('n1', `old${i}`, 'v0', { w: 3 });

      sc.sim.net.isolate(sc.node('n3').address);
      for (let i = 0; i < 30; i++) await sc.put(i % 2 ? 'n1' : 'n2', `new${i}`, `v${i}`, { w: 2 });
      for (let i = 0; i < 5; i++) {
        const got = await sc.get('n1', `old${i}`);
        await sc.del('n2', `old${i}`, { context: got.context! });
      }
      expect(await sc.local('n3', 'new0')).toEqual([]);
      sc.sim.net.heal();
      await sc.waitConverged();

      await sc.runUntil('n3 repaired by anti-entropy', async () => {
        for (let i = 0; i < 30; i++) if ((await sc.local('n3', `new${i}`)).length !== 1) return false;
        for (let i = 0; i < 5; i++) if ((await sc.local('n3', `old${i}`)).length !== 0) return false;
        return true;
      });
      for (let i = 0; i < 30; i++) expect(await sc.local('n3', `new${i}`)).toEqual([`v${i}`]);
      for (let i = 5; i < 10; i++) expect(await sc.local('n3', `old${i}`)).toEqual(['v0']);
      const leaves = aes.map((ae) => Buffer.from(ae.tree!.leaves.buffer));
      expect(leaves[0]!.equals(leaves[2]!)).toBe(true);
      expect(leaves[1]!.equals(leaves[2]!)).toBe(true);
      let repaired = 0;
      for (const n of sc.nodes) repaired += (await n.metrics.aaeKeysRepaired.get()).values[0]?.value ?? 0;
      expect(repaired).toBe(35); // 30 new keys and 5 tombstones, each to n3 once
      for (const ae of aes) await ae.stop();
    } finally {
      await sc.stop();
    }
  });
});
