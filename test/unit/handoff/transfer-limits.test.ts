/**
 * Ownership transfer, the parts that need no cluster: the receive
 * plan's choice of source, and the size of what the stray cleaner and a pull source send,
 * with copies of the largest value a client may write, over the real HTTP internal routes
 * where a peer's body limit matters.
 */
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaClient } from '../../../src/coordinator/replica-client.js';
import { STRAY_CLEANER_DEFAULTS, StrayCleaner, TRANSFER_ROUTES, Transfers } from '../../../src/handoff/transfer.js';
import { receivePlan } from '../../../src/handoff/transfer-plan.js';
import { INTERNAL_BODY_LIMIT, internalRoutes } from '../../../src/http/internal-plugin.js';
import type { Membership } from '../../../src/membership/index.js';
import type { MemberRecord } from '../../../src/membership/types.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { LocalReplica } from '../../../src/replica/local-replica.js';
import { buildRing } from '../../../src/ring/ring.js';
import type { Ring } from '../../../src/ring/types.js';
import { ManualTime, seededRandom, systemClock, systemTimers } from '../../../src/runtime/index.js';
import { MemoryStore } from '../../../src/storage/index.js';
import { HttpTransport } from '../../../src/transport/http.js';
import { Reader, Writer } from '../../../src/wire.js';

const ringOf = (ids: string[], n: number): Ring =>
  buildRing(
    ids.map((id) => ({ id, zone: id, weight: 1 })),
    { n, partitionBits: 8 },
  );

describe('receivePlan: where a partition a member leaves comes from', () => {
  // N=3 on five members; e leaves. Each partition e replicates passes to a member that does
  // not replicate it yet; that receiver must take e's copy, not a co-replica's (which may
  // lack writes that only e and one other replica hold).
  const current = ringOf(['a', 'b', 'c', 'd', 'e'], 3);
  const pending = ringOf(['a', 'b', 'c', 'd'], 3);
  const all = Array.from({ length: current.partitions }, (_, p) => p);
  const moving = all.filter((p) => current.preferenceList(p).includes('e') && current.preferenceList(p)[0] !== 'e');

  it('pulls it from the leaving member, even where another owner comes first in the preference list', () => {
    expect(moving.length).toBeGreaterThan(0);
    for (const self of ['a', 'b', 'c', 'd']) {
      const { bySource, unsourced } = receivePlan(current, pending, self, () => true);
      expect(unsourced).toEqual([]);
      for (const [source, partitions] of bySource)
        for (const p of partitions) if (current.preferenceList(p).includes('e')) expect(source, `partition ${p} for ${self}`).toBe('e');
    }
  });

  it('leaves it unsourced while the leaving member is down (it cannot go before handing over anyway)', () => {
    for (const self of ['a', 'b', 'c', 'd']) {
      const { bySource, unsourced } = receivePlan(current, pending, self, (id) => id !== 'e');
      const gained = all.filter((p) => pending.preferenceList(p).includes(self) && !current.preferenceList(p).includes(self));
      expect(new Set([...unsourced, ...[...bySource.values()].flat()])).toEqual(new Set(gained));
      for (const p of gained) expect(unsourced.includes(p)).toBe(current.preferenceList(p).includes('e'));
    }
  });
});

/** SPEC §1: the default `--max-value-bytes`, the largest value a client may write. */
const MAX_VALUE_BYTES = 1_048_576;
const SECRET = 'the-secret';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A started replica on a fresh memory store (closed after the test). */
async function replicaOf(actor: string): Promise<{ replica: LocalReplica; store: MemoryStore }> {
  const store = new MemoryStore();
  await store.open();
  cleanups.push(() => store.close());
  const replica = new LocalReplica({ store, random: seededRandom(7), log: silentLogger() }, { actor });
  await replica.start();
  return { replica, store };
}

/** A membership in which `ring` is current and pending and every member of `addresses` is active and up. */
function membershipOf(self: string, ring: Ring, addresses: Record<string, string>): Membership {
  const member = (id: string): MemberRecord | undefined => {
    const address = addresses[id];
    return address === undefined ? undefined : { id, address, zone: id, weight: 1, state: 'active', incarnation: 1, heartbeat: 1 };
  };
  return { self, member, isUp: (id: string) => member(id) !== undefined, ring: () => ring, pendingRing: () => ring } as unknown as Membership;
}

/** Member `id` over real HTTP: its replica's replica routes behind the internal routes with their default body limit, as node.ts serves them. */
async function ownerOverHttp(id: string, ring: Ring): Promise<{ address: string; replica: LocalReplica }> {
  const { replica } = await replicaOf(`${id}.e1`);
  const client = new ReplicaClient({ transport: {} as never, replica, membership: membershipOf(id, ring, {}) }, { hintedHandoff: true });
  const app = Fastify();
  await app.register(internalRoutes, { handlers: client.handlers(), secret: SECRET });
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => app.close());
  return { address: `127.0.0.1:${(app.server.address() as { port: number }).port}`, replica };
}

const bigValue = (i: number): Uint8Array => new Uint8Array(MAX_VALUE_BYTES).fill(i % 251);
const holds = (got: Awaited<ReturnType<LocalReplica['read']>>, i: number): boolean =>
  got?.siblings[0]?.value.length === MAX_VALUE_BYTES && got.siblings[0].value[0] === i % 251;

describe('the stray cleaner with large values', () => {
  it('hands over and drops 70 strays of the largest value size (together above a peer\'s body limit)', async () => {
    // Node a holds 70 keys of 1 MiB in partitions it does not replicate, all of which b
    // replicates (N=2 on four nodes). With the default batch of 256 strays they go to b as
    // one 70 MiB message, above the 64 MiB b's internal routes accept: refused on every
    // step, so the copies are never dropped, and every pass reads and sends them again.
    const ring = ringOf(['a', 'b', 'c', 'd'], 2);
    const keys: string[] = [];
    for (let i = 0; keys.length < 70; i++) {
      const pref = ring.preferenceList(ring.partitionOf(`big${i}`));
      if (pref.includes('b') && !pref.includes('a')) keys.push(`big${i}`);
    }
    expect(keys.length * MAX_VALUE_BYTES).toBeGreaterThan(INTERNAL_BODY_LIMIT);
    const holder = await replicaOf('a.e1');
    for (const [i, k] of keys.entries())
      await holder.replica.coordinate(ring.partitionOf(k), k, {}, { value: bigValue(i), contentType: 'application/octet-stream', deleted: false }, 1);
    const owners: Record<string, string> = {};
    const replicas: Record<string, LocalReplica> = {};
    for (const id of ['b', 'c', 'd']) {
      const o = await ownerOverHttp(id, ring);
      owners[id] = o.address;
      replicas[id] = o.replica;
    }
    const transport = new HttpTransport({ clock: systemClock, timers: systemTimers }, { secret: SECRET });
    cleanups.push(() => transport.close());
    const cleaner = new StrayCleaner(
      { store: holder.store, replica: holder.replica, membership: membershipOf('a', ring, owners), transport, clock: new ManualTime(), log: silentLogger() },
      STRAY_CLEANER_DEFAULTS,
    );
    // Steps, as the transfer loop runs them, until two in a row drop nothing (a refused
    // message is refused again, so more would not help).
    for (let idle = 0, i = 0; idle < 2 && i < 50; i++) idle = (await cleaner.step()) > 0 ? 0 : idle + 1;

    const left: string[] = [];
    for (const k of keys) if ((await holder.replica.read(ring.partitionOf(k), k)) !== undefined) left.push(k);
    expect(left).toEqual([]);
    const missing: string[] = [];
    for (const [i, k] of keys.entries())
      for (const o of ring.preferenceList(ring.partitionOf(k)))
        if (!holds(await (replicas[o] as LocalReplica).read(ring.partitionOf(k), k), i)) missing.push(`${k}@${o}`);
    expect(missing).toEqual([]);
  }, 120_000);
});

describe('a pull source with large values', () => {
  it('answers a pull of the default batch size (256 keys) with at most what a peer accepts in one message', async () => {
    // A source holds 300 keys of 1 MiB in one partition a receiver pulls. Every key is sent
    // whole in the reply, so a reply of 256 of them is 256 MiB, built in the source's memory
    // (and a leaving node answers each of its receivers at once); bounded by bytes, as every
    // other internal message is by the 64 MiB a peer accepts, it holds far less.
    const ring = ringOf(['a', 'b', 'c', 'd'], 2);
    const source = await replicaOf('a.e1');
    const partition = ring.partitionOf('big0');
    let stored = 0;
    for (let i = 0; stored < 300; i++) {
      const k = `big${i}`;
      if (ring.partitionOf(k) !== partition) continue;
      await source.replica.coordinate(partition, k, {}, { value: bigValue(stored), contentType: 'application/octet-stream', deleted: false }, 1);
      stored++;
    }
    const time = new ManualTime();
    const transfers = new Transfers({
      store: source.store,
      replica: source.replica,
      membership: membershipOf('a', ring, {}),
      transport: {} as never,
      timers: time,
      clock: time,
      log: silentLogger(),
      metrics: new Metrics('a'),
    });
    const bitmap = new Uint8Array(ring.partitions / 8);
    bitmap[partition >> 3]! |= 1 << (partition & 7);
    const pull = transfers.handlers().get(TRANSFER_ROUTES.pull)!;
    // A receiver's request with TRANSFER_DEFAULTS: 256 objects, 4096 keys scanned at most.
    const request = new Writer(128).str('plan').bytes(bitmap).bytes(new Uint8Array(0)).uint(256).uint(4096).finish();
    const reply = await pull(request, undefined);
    const r = new Reader(reply);
    r.uint(); // done
    r.bytes(); // cursor
    expect(r.uint()).toBeGreaterThan(0); // it does make progress
    expect(reply.length).toBeLessThanOrEqual(INTERNAL_BODY_LIMIT);
  }, 60_000);
});
