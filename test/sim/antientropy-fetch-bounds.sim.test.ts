/**
 * Anti-entropy with large copies: an aae-fetch reply stops at the responder's byte bound
 * (maxFetchBytes) and the requester asks again for the rest; both sides read copies from the
 * store a few at a time; the reaper pages through cut-short replies too.
 *
 * Hand-wired replicas (LocalReplica + MemoryStore + AntiEntropy per node) on one fixed ring,
 * one MemoryNetwork and one ManualTime. Each store records the largest number of bytes one
 * read returned, and each node's outgoing traffic records the size of every message and reply.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AntiEntropy, type AntiEntropyInit } from '../../src/antientropy/index.js';
import * as aae from '../../src/antientropy/messages.js';
import { RingkvError } from '../../src/errors.js';
import type { MembershipView } from '../../src/membership/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { LocalReplica } from '../../src/replica/local-replica.js';
import { buildRing } from '../../src/ring/index.js';
import type { Ring } from '../../src/ring/types.js';
import { ManualTime, type Random, seededRandom } from '../../src/runtime/index.js';
import { MemoryStore, type Namespace } from '../../src/storage/index.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import type { PeerAddress, SendOptions, Transport } from '../../src/transport/transport.js';
import { sameVersion, type VersionedObject } from '../../src/version/index.js';
import { Writer } from '../../src/wire.js';
import { forEachSeed } from './harness.js';

const FILE = 'test/sim/antientropy-fetch-bounds.sim.test.ts';

/** A MemoryStore that records the most bytes of values one getMany returned. */
class MeteredStore extends MemoryStore {
  largestRead = 0;

  override async getMany(ns: Namespace, keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    const out = await super.getMany(ns, keys);
    let bytes = 0;
    for (const v of out) bytes += v?.length ?? 0;
    this.largestRead = Math.max(this.largestRead, bytes);
    return out;
  }
}

/** Records every message's size and its reply's, by route. */
class Wire implements Transport {
  readonly sent = new Map<string, number[]>();
  readonly received = new Map<string, number[]>();

  constructor(private readonly inner: Transport) {}

  async send(to: PeerAddress, route: string, body: Uint8Array, opts: SendOptions): Promise<Uint8Array> {
    this.sent.set(route, [...(this.sent.get(route) ?? []), body.length]);
    const reply = await this.inner.send(to, route, body, opts);
    this.received.set(route, [...(this.received.get(route) ?? []), reply.length]);
    return reply;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Node {
  readonly id: string;
  readonly store: MeteredStore;
  readonly replica: LocalReplica;
  readonly ae: AntiEntropy;
  readonly wire: Wire;
}

/** Replicas of every partition (N = number of ids), each with its own anti-entropy options. */
class Cluster {
  readonly time = new ManualTime();
  readonly net = new MemoryNetwork(this.time);
  readonly ring: Ring;
  readonly nodes = new Map<string, Node>();
  readonly random: Random;

  constructor(
    seed: number,
    readonly ids: readonly string[],
    readonly init: (id: string) => Partial<AntiEntropyInit>,
    n = ids.length,
  ) {
    this.random = seededRandom(seed);
    this.ring = buildRing(
      ids.map((id) => ({ id, zone: id, weight: 1 })),
      { n, partitionBits: 6 },
    );
  }

  view(id: string): MembershipView {
    const record = (m: string) => ({ id: m, address: `${m}:7000`, zone: m, weight: 1, state: 'active' as const, incarnation: 1, heartbeat: 1 });
    return {
      self: id,
      ring: () => this.ring,
      pendingRing: () => this.ring,
      member: (m) => (this.ids.includes(m) ? record(m) : undefined),
      isUp: () => true,
      statuses: () => this.ids.map((m) => ({ id: m, address: `${m}:7000`, zone: m, weight: 1, status: 'up' as const })),
      onChange: () => () => undefined,
    };
  }

  async start(): Promise<void> {
    for (const id of this.ids) {
      const store = new MeteredStore();
      await store.open();
      const random = seededRandom(this.random.int(2 ** 32));
      const log = silentLogger();
      const replica = new LocalReplica({ store, random, log }, { actor: `${id}.e1` });
      await replica.start();
      const wire = new Wire(this.net.transport(`${id}:7000`));
      const ae = new AntiEntropy(
        { store, replica, membership: this.view(id), transport: wire, clock: this.time, timers: this.time, random, log, metrics: new Metrics(id) },
        { timeoutMs: 5000, intervalMs: 1000, reaper: false, ...this.init(id) },
      );
      this.net.register(`${id}:7000`, ae.handlers());
      await ae.rebuild();
      this.nodes.set(id, { id, store, replica, ae, wire });
    }
  }

  async stop(): Promise<void> {
    for (const n of this.nodes.values()) {
      await n.ae.stop();
      await n.store.close();
    }
  }

  node(id: string): Node {
    return this.nodes.get(id)!;
  }

  /** Run `p` to completion while simulated time passes. */
  async settle<T>(p: Promise<T>): Promise<T> {
    let done = false;
    const watched = p.finally(() => {
      done = true;
    });
    watched.catch(() => undefined);
    for (let i = 0; !done; i++) {
      if (i > 100_000) throw new Error('did not settle');
      await this.time.advance(5);
      await new Promise<void>((r) => setImmediate(r));
    }
    return watched;
  }

  /** A value of `size` bytes, each byte `fill`, minted on `on[0]` and copied to the rest of `on`. */
  async put(key: string, size: number, fill: number, on: readonly string[], context = {}): Promise<VersionedObject> {
    const p = this.ring.partitionOf(key);
    const write = { value: new Uint8Array(size).fill(fill), contentType: 'application/octet-stream', deleted: false };
    const { object } = await this.node(on[0]!).replica.coordinate(p, key, context, write, this.time.now());
    for (const id of on.slice(1)) await this.node(id).replica.apply(p, key, object);
    return object;
  }

  /** A delete minted on `on[0]` with its current context, copied to the rest of `on`. */
  async del(key: string, on: readonly string[]): Promise<void> {
    const p = this.ring.partitionOf(key);
    const current = await this.node(on[0]!).replica.read(p, key);
    const write = { value: new Uint8Array(0), contentType: 'text/plain', deleted: true };
    const { object } = await this.node(on[0]!).replica.coordinate(p, key, current?.clock ?? {}, write, this.time.now());
    for (const id of on.slice(1)) await this.node(id).replica.apply(p, key, object);
  }

  read(id: string, key: string): Promise<VersionedObject | undefined> {
    return this.node(id).replica.read(this.ring.partitionOf(key), key);
  }

  /** The keys whose stored versions differ between `a` and `b` (or that only one holds). */
  async differing(a: string, b: string, keys: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const k of keys) {
      const x = await this.read(a, k);
      const y = await this.read(b, k);
      if ((x === undefined) !== (y === undefined) || (x && y && !sameVersion(x, y))) out.push(k);
    }
    return out;
  }
}

let cluster: Cluster | undefined;
async function make(seed: number, ids: readonly string[], init: (id: string) => Partial<AntiEntropyInit>, n?: number): Promise<Cluster> {
  await cluster?.stop();
  cluster = new Cluster(seed, ids, init, n);
  await cluster.start();
  return cluster;
}

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const KB = 1024;
/** Values of 50 KiB against bounds of 200 KiB: a batch of 40 is 2000 KiB, ten bounds' worth. */
const VALUE = 50 * KB;
const BOUND = 200 * KB;
/** Envelope of one copy in a message, and of a message (flags, lengths, key, partition). */
const SLACK = 4 * KB;

const max = (xs: readonly number[] | undefined): number => Math.max(0, ...(xs ?? []));

describe('aae-fetch replies bounded in bytes', () => {
  it('a peer answers a batch of large copies in replies of at most its bound, and every copy arrives', async () => {
    const c = await make(1, ['a', 'b'], () => ({ maxFetchBytes: BOUND }));
    const keys = Array.from({ length: 40 }, (_, i) => `big${i}`);
    for (const [i, k] of keys.entries()) await c.put(k, VALUE, i, ['b']);
    c.node('b').store.largestRead = 0;

    const r = await c.settle(c.node('a').ae.exchangeWith('b'));

    expect([r.outcome, r.error, r.keysRepaired]).toEqual(['repaired', undefined, 40]);
    for (const [i, k] of keys.entries()) {
      const got = await c.read('a', k);
      expect([got?.siblings[0]?.value.length, got?.siblings[0]?.value[0]]).toEqual([VALUE, i]);
    }
    const replies = c.node('a').wire.received.get('aae-fetch')!;
    // Before: one reply of all 40 copies (~2000 KiB), and one store read of as much at b.
    expect(max(replies)).toBeLessThanOrEqual(BOUND + SLACK);
    expect(replies.length).toBeGreaterThanOrEqual(Math.ceil((40 * VALUE) / BOUND));
    expect(c.node('b').store.largestRead).toBeLessThanOrEqual(8 * (VALUE + SLACK));
    expect(await c.differing('a', 'b', keys)).toEqual([]);
  });

  it('the copies the requester pushes are read from its store a few at a time, and sent in bounded messages', async () => {
    const c = await make(2, ['a', 'b'], () => ({ maxRepairBytes: BOUND }));
    const keys = Array.from({ length: 40 }, (_, i) => `big${i}`);
    for (const [i, k] of keys.entries()) await c.put(k, VALUE, i, ['a']);
    c.node('a').store.largestRead = 0;

    const r = await c.settle(c.node('a').ae.exchangeWith('b'));

    expect([r.outcome, r.error, r.keysRepaired]).toEqual(['repaired', undefined, 40]);
    // Before: the batch's 40 local copies (~2000 KiB) read at once and held until all were sent.
    expect(c.node('a').store.largestRead).toBeLessThanOrEqual(8 * (VALUE + SLACK));
    expect(max(c.node('a').wire.sent.get('aae-repair'))).toBeLessThanOrEqual(BOUND + SLACK);
    expect(await c.differing('a', 'b', keys)).toEqual([]);
  });

  it('a peer that refuses every repair still gives this side every copy it lacks (the exchange then fails)', async () => {
    const c = await make(5, ['a', 'b'], () => ({ maxRepairBytes: BOUND }));
    // Interleaved, so that the batch has pushes to make before and after b's copies.
    const keys = Array.from({ length: 40 }, (_, i) => `big${i}`);
    for (const [i, k] of keys.entries()) await c.put(k, VALUE, i, [i % 2 === 0 ? 'a' : 'b']);
    const handlers = new Map(c.node('b').ae.handlers());
    handlers.set('aae-repair', async () => {
      throw new RingkvError('UNAVAILABLE', 'ENOSPC: no space left on device (provoked by the test)');
    });
    c.net.register('b:7000', handlers);

    const r = await c.settle(c.node('a').ae.exchangeWith('b'));

    expect(r.outcome).toBe('failed');
    expect(r.error).toMatch(/ENOSPC/);
    // One refused push, then no more: the rest of a's copies are not sent in vain.
    expect(c.node('a').wire.sent.get('aae-repair')!.length).toBe(1);
    for (const [i, k] of keys.entries()) if (i % 2 === 1) expect((await c.read('a', k))?.siblings[0]?.value[0]).toBe(i);
  });

  it('converges two replicas whatever the mix of sizes, holders and concurrent versions (small bounds both ways)', async () => {
    await forEachSeed(
      4,
      async (seed) => {
        const bounds = { maxFetchBytes: 30 * KB, maxRepairBytes: 30 * KB, batchSize: 16 };
        const c = await make(seed, ['a', 'b'], () => bounds);
        const rnd = c.random;
        const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
        for (const [i, k] of keys.entries()) {
          const size = rnd.int(4) === 0 ? 0 : rnd.int(40 * KB);
          const where = rnd.int(4);
          if (where === 0) await c.put(k, size, i, ['a']);
          else if (where === 1) await c.put(k, size, i, ['b']);
          else if (where === 2) {
            // Concurrent versions: both become siblings on both sides.
            await c.put(k, size, i, ['a']);
            await c.put(k, rnd.int(40 * KB), i + 1, ['b']);
          } else {
            const obj = await c.put(k, size, i, ['a', 'b']);
            await c.put(k, rnd.int(40 * KB), i + 2, ['b'], obj.clock);
          }
        }
        const r = await c.settle(c.node('a').ae.exchangeWith('b'));
        expect([r.outcome, r.error]).toEqual(['repaired', undefined]);
        expect(await c.differing('a', 'b', keys)).toEqual([]);
        expect(max(c.node('a').wire.received.get('aae-fetch'))).toBeLessThanOrEqual(30 * KB + 40 * KB + SLACK);
        expect(max(c.node('a').wire.sent.get('aae-repair'))).toBeLessThanOrEqual(30 * KB + 40 * KB + SLACK);
        expect((await c.settle(c.node('b').ae.exchangeWith('a'))).outcome).toBe('identical');
      },
      { file: FILE },
    );
  });

  it('a copy larger than the bound still goes, alone in its reply', async () => {
    const c = await make(3, ['a', 'b'], () => ({ maxFetchBytes: 10 * KB }));
    const keys = ['huge0', 'huge1', 'small'];
    await c.put('huge0', 100 * KB, 1, ['b']);
    await c.put('huge1', 100 * KB, 2, ['b']);
    await c.put('small', 10, 3, ['b']);
    const r = await c.settle(c.node('a').ae.exchangeWith('b'));
    expect([r.outcome, r.error, r.keysRepaired]).toEqual(['repaired', undefined, 3]);
    expect(c.node('a').wire.received.get('aae-fetch')!.length).toBeGreaterThanOrEqual(2);
    expect(await c.differing('a', 'b', keys)).toEqual([]);
  });
});

describe('aae-fetch replies a requester cannot trust', () => {
  /** `b` serves aae-fetch with `reply` instead (given the request's key count). */
  function serveFetch(c: Cluster, reply: (keys: number) => Uint8Array): void {
    const handlers = new Map(c.node('b').ae.handlers());
    handlers.set('aae-fetch', async (body) => reply(aae.decodeFetchRequest(body).refs.length));
    c.net.register('b:7000', handlers);
  }

  it('an exchange whose peer defers every copy fails (no endless asking) and changes nothing', async () => {
    const c = await make(4, ['a', 'b'], () => ({}));
    for (let i = 0; i < 10; i++) await c.put(`k${i}`, 100, i, ['b']);
    serveFetch(c, (n) => aae.encodeFetchReply([], n));
    const r = await c.settle(c.node('a').ae.exchangeWith('b'));
    expect(r.outcome).toBe('failed');
    expect(r.error).toMatch(/deferred every object/);
    expect(c.node('a').wire.sent.get('aae-fetch')!.length).toBe(1);
    expect(await c.read('a', 'k0')).toBeUndefined();
  });

  it('a reply with a copy after a deferred entry is malformed', async () => {
    const bytes = new Writer(16).uint(3).uint(1).bytes(Uint8Array.of(9)).uint(2).uint(0).finish();
    expect(() => aae.decodeFetchReplyParts(bytes)).toThrow(/after a deferred/);
  });

  it('a reply within the bound is byte for byte the old encoding; a cut-short one is refused by the old decoder, never read as absent', () => {
    // What nodes from before the bound wrote (and decodeFetchReply still reads).
    const old = (objects: readonly (Uint8Array | undefined)[]): Uint8Array => {
      const w = new Writer(64).uint(objects.length);
      for (const o of objects) {
        if (o === undefined) w.uint(0);
        else w.uint(1).bytes(o);
      }
      return w.finish();
    };
    const objects = [Uint8Array.of(1, 2, 3), undefined, new Uint8Array(300).fill(7)];
    expect(Buffer.from(aae.encodeFetchReply(objects)).equals(Buffer.from(old(objects)))).toBe(true);
    const cut = aae.encodeFetchReply(objects.slice(0, 1), 2);
    expect(aae.decodeFetchReplyParts(cut)).toEqual({ objects: objects.slice(0, 1), deferred: 2 });
    expect(() => aae.decodeFetchReply(cut)).toThrow(/deferred/);
  });
});

describe('the reaper and cut-short fetch replies', () => {
  const HOUR = 3600_000;

  it('pages through replies of one copy each, reaps what every member lets go, and keeps a key a non-owner holds live', async () => {
    // Four members, three owners per partition: each key has one member outside its list.
    // Every member serves aae-fetch one copy per reply.
    const c = await make(6, ['a', 'b', 'c', 'd'], () => ({ maxFetchBytes: 1, reaper: { graceMs: HOUR } }), 3);
    const keys: string[] = [];
    for (let i = 0; keys.length < 20; i++) {
      // Keys a leads, so that a's reaping pass initiates for them.
      const k = `gone${i}`;
      if (c.ring.preferenceList(c.ring.partitionOf(k))[0] === 'a') keys.push(k);
    }
    const owners = (k: string): string[] => [...c.ring.preferenceList(c.ring.partitionOf(k))];
    const outsider = (k: string): string => c.ids.find((id) => !owners(k).includes(id))!;
    for (const k of keys) {
      await c.put(k, 1000, 1, owners(k));
      await c.del(k, owners(k));
    }
    // The member outside kept0's list holds a live copy of it (a fallback that stood in).
    const kept = keys[0]!;
    await c.put(kept, 5000, 9, [outsider(kept)]);
    await c.time.advance(2 * HOUR);

    const pass = (await c.settle(c.node('a').ae.reap()))!;

    expect(pass.candidates).toBe(20);
    expect(pass.keys).toBe(19);
    for (const k of keys.slice(1)) for (const id of owners(k)) expect(await c.read(id, k)).toBeUndefined();
    for (const id of owners(kept)) expect((await c.read(id, kept))?.siblings.every((s) => s.deleted)).toBe(true);
    // Replies of one copy each: many more fetches than members asked.
    expect(c.node('a').wire.sent.get('aae-fetch')!.length).toBeGreaterThan(20);
  });
});
