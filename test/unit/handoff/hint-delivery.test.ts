/**
 * Hint delivery (HintDelivery) driven directly: a holder's replica with parked hints, and
 * owners served either over the real HTTP internal routes (so that whatever a real peer
 * refuses, its body limit, is refused here too) or by a transport the test controls.
 */
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaClient } from '../../../src/coordinator/replica-client.js';
import { HintDelivery } from '../../../src/handoff/hint-delivery.js';
import { INTERNAL_BODY_LIMIT, internalRoutes } from '../../../src/http/internal-plugin.js';
import type { MemberRecord, MembershipView } from '../../../src/membership/types.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { LocalReplica } from '../../../src/replica/local-replica.js';
import { ManualTime, seededRandom, systemClock, systemTimers } from '../../../src/runtime/index.js';
import { hintOwnerRange, MemoryStore, type Namespace, type RangeOptions } from '../../../src/storage/index.js';
import { HttpTransport } from '../../../src/transport/http.js';
import type { SendOptions, Transport } from '../../../src/transport/transport.js';

const SECRET = 'the-secret';
/** SPEC §1: the default `--max-value-bytes`, the largest value a client may write. */
const MAX_VALUE_BYTES = 1_048_576;
/** Every key lives in this partition (the nodes here share one trivial ring). */
const PARTITION = 3;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A started replica on a fresh memory store (closed after the test). */
async function replicaOf(actor: string, store = new MemoryStore()): Promise<{ replica: LocalReplica; store: MemoryStore }> {
  await store.open();
  cleanups.push(() => store.close());
  const replica = new LocalReplica({ store, random: seededRandom(7), log: silentLogger() }, { actor });
  await replica.start();
  return { replica, store };
}

/** A membership view in which every member of `addresses` is active and up. */
function membershipOf(self: string, addresses: Record<string, string>): MembershipView {
  const member = (id: string): MemberRecord | undefined => {
    const address = addresses[id];
    if (address === undefined) return undefined;
    return { id, address, zone: 'a', weight: 1, state: 'active', incarnation: 1, heartbeat: 1 };
  };
  return {
    self,
    member,
    isUp: (id: string) => member(id) !== undefined,
    ring: () => ({ partitionOf: () => PARTITION }),
  } as unknown as MembershipView;
}

/**
 * Owner `id` over real HTTP: its replica's replica-write-batch handler behind the internal
 * routes with their default body limit, as node.ts serves them.
 */
async function ownerOverHttp(id: string): Promise<{ address: string; replica: LocalReplica }> {
  const { replica } = await replicaOf(`${id}.owner`);
  const client = new ReplicaClient(
    { transport: {} as never, replica, membership: membershipOf(id, {}) },
    { hintedHandoff: true },
  );
  const app = Fastify();
  await app.register(internalRoutes, { handlers: client.handlers(), secret: SECRET });
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => app.close());
  return { address: `127.0.0.1:${(app.server.address() as { port: number }).port}`, replica };
}

/**
 * HintDelivery on `holder`, sending over real HTTP, with the default batch settings; started
 * (stopped after the test), its timer too far off to fire: the test runs every pass itself.
 */
function deliveryFrom(
  holder: { replica: LocalReplica; store: MemoryStore },
  membership: MembershipView,
): HintDelivery {
  const transport = new HttpTransport({ clock: systemClock, timers: systemTimers }, { secret: SECRET });
  cleanups.push(() => transport.close());
  const delivery = new HintDelivery(
    { store: holder.store, replica: holder.replica, membership, transport, timers: systemTimers, log: silentLogger(), metrics: new Metrics(membership.self) },
    { intervalMs: 3_600_000 },
  );
  delivery.start();
  cleanups.push(() => delivery.stop());
  return delivery;
}

const bigValue = (i: number): Uint8Array => new Uint8Array(MAX_VALUE_BYTES).fill(i % 251);

describe('hint delivery to an owner over HTTP', () => {
  it('delivers hints whose copies together exceed the internal body limit (70 values of the largest size a client may write)', async () => {
    // 70 keys of 1 MiB, every one written while the owner n2 was down: one hint each. They
    // fit one default batch (256 keys), but as one message they are 70 MiB, above the 64 MiB
    // the owner's internal routes accept.
    const keys = Array.from({ length: 70 }, (_, i) => `big${i}`);
    expect(keys.length * MAX_VALUE_BYTES).toBeGreaterThan(INTERNAL_BODY_LIMIT);
    const holder = await replicaOf('n1.holder');
    for (const [i, k] of keys.entries())
      await holder.replica.coordinate(PARTITION, k, {}, { value: bigValue(i), contentType: 'application/octet-stream', deleted: false }, 1, ['n2']);
    expect(holder.replica.pendingHints).toBe(keys.length);

    const owner = await ownerOverHttp('n2');
    const delivery = deliveryFrom(holder, membershipOf('n1', { n2: owner.address }));
    // Copies the holder reads to fill its batches: a batch of 1 MiB values holds 7, and should
    // not read many more than it sends (32 MiB read for 8 MiB sent, say).
    let copiesRead = 0;
    const getMany = holder.store.getMany.bind(holder.store);
    holder.store.getMany = (ns, keys) => {
      if (ns === 'obj') copiesRead += keys.length;
      return getMany(ns, keys);
    };
    // Two passes, as the holder's timer would run them a second apart: a refused message is
    // refused again, so the number does not matter.
    await delivery.runPass();
    await delivery.runPass();

    expect(holder.replica.pendingHints).toBe(0);
    // One copy more than it sends per batch (read again by the next), at most.
    expect(copiesRead).toBeLessThanOrEqual(keys.length + Math.ceil(keys.length / 7));
    const missing: string[] = [];
    for (const [i, k] of keys.entries()) {
      const got = await owner.replica.read(PARTITION, k);
      if (got?.siblings[0]?.value[0] !== i % 251 || got.siblings[0].value.length !== MAX_VALUE_BYTES) missing.push(k);
    }
    expect(missing).toEqual([]);
  }, 60_000);
});

/** A memory store that fails the next listing of one owner's hints (a disk read error). */
class HintReadFailingStore extends MemoryStore {
  failOwner: string | undefined;
  override entries(ns: Namespace, range?: RangeOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    const owner = this.failOwner;
    if (ns === 'hint' && owner !== undefined && range?.lt !== undefined && Buffer.from(range.lt).equals(hintOwnerRange(owner).lt)) {
      this.failOwner = undefined;
      throw new Error('EIO (provoked by the test)');
    }
    return super.entries(ns, range);
  }
}

/**
 * A transport whose sends to `held` wait until release(); every other send succeeds at once.
 * Counts the sends in flight per peer, and the most there ever were.
 */
function holdingTransport(held: string): Transport & { release: () => void; inFlight: (to: string) => number; most: (to: string) => number } {
  const inFlight = new Map<string, number>();
  const most = new Map<string, number>();
  const waiting: (() => void)[] = [];
  let released = false;
  return {
    async send(to: string, _route: string, _body: Uint8Array, _opts: SendOptions): Promise<Uint8Array> {
      inFlight.set(to, (inFlight.get(to) ?? 0) + 1);
      most.set(to, Math.max(most.get(to) ?? 0, inFlight.get(to) ?? 0));
      try {
        if (to === held && !released) await new Promise<void>((r) => waiting.push(r));
        return new Uint8Array(0);
      } finally {
        inFlight.set(to, (inFlight.get(to) ?? 0) - 1);
      }
    },
    async close(): Promise<void> {},
    release: () => {
      released = true;
      for (const r of waiting.splice(0)) r();
    },
    inFlight: (to) => inFlight.get(to) ?? 0,
    most: (to) => most.get(to) ?? 0,
  };
}

/** Let queued promise callbacks and the memory store's I/O callbacks run. */
async function settleIo(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

describe('one delivery pass at a time', () => {
  it("a failure delivering to one owner does not end the pass while another owner's batch is still out", async () => {
    // Hints for two owners; the pass serves both at once (concurrency 2). Listing na's hints
    // fails once; nb's batch is slow to be acknowledged.
    const store = new HintReadFailingStore();
    const holder = await replicaOf('n1.holder', store);
    for (let i = 0; i < 5; i++) await holder.replica.coordinate(PARTITION, `k${i}`, {}, { value: new Uint8Array([i]), contentType: 'text/plain', deleted: false }, 1, ['na', 'nb']);
    store.failOwner = 'na';
    const transport = holdingTransport('10.0.0.2:8081');
    const time = new ManualTime();
    const membership = membershipOf('n1', { na: '10.0.0.1:8081', nb: '10.0.0.2:8081' });
    const delivery = new HintDelivery(
      { store, replica: holder.replica, membership, transport, timers: time, log: silentLogger(), metrics: new Metrics('n1') },
      { intervalMs: 1000 },
    );
    delivery.start();
    cleanups.push(async () => {
      transport.release();
      await delivery.stop();
    });

    await time.advance(1000);
    await settleIo();
    expect(transport.inFlight('10.0.0.2:8081')).toBe(1);
    // A few more intervals while nb's batch is still out: no second batch may go to nb (one
    // batch in flight per owner), and stopping must wait for the one that is out.
    for (let i = 0; i < 3; i++) {
      await time.advance(1000);
      await settleIo();
    }
    expect(transport.most('10.0.0.2:8081')).toBe(1);
    let stopped = false;
    const stopping = delivery.stop().then(() => {
      stopped = true;
    });
    await settleIo();
    expect(stopped).toBe(false);
    transport.release();
    await stopping;
    expect(transport.inFlight('10.0.0.2:8081')).toBe(0);
  });
});
