/**
 * Anti-entropy: an exchange between two replicas where the peer is served over the
 * real HTTP internal routes, so that whatever a real peer refuses (its 64 MiB body limit) is
 * refused here too; with values of the largest size a client may write by default, both
 * ways: the copies pushed to the peer, and the copies fetched from it (in replies of at most
 * MAX_MESSAGE_COPY_BYTES plus one copy, not in one reply of the whole batch).
 */
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { AntiEntropy } from '../../../src/antientropy/index.js';
import { INTERNAL_BODY_LIMIT, internalRoutes } from '../../../src/http/internal-plugin.js';
import type { MemberRecord, MembershipView } from '../../../src/membership/types.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { LocalReplica } from '../../../src/replica/local-replica.js';
import { buildRing } from '../../../src/ring/index.js';
import { seededRandom, systemClock, systemTimers } from '../../../src/runtime/index.js';
import { MemoryStore } from '../../../src/storage/index.js';
import { HttpTransport } from '../../../src/transport/http.js';
import { MAX_MESSAGE_COPY_BYTES, type Transport } from '../../../src/transport/transport.js';

const SECRET = 'the-secret';
/** SPEC §1: the default `--max-value-bytes`, the largest value a client may write. */
const MAX_VALUE_BYTES = 1_048_576;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Two replicas, a and b, of every partition (N = 2), both active and up. */
const ring = buildRing(
  ['a', 'b'].map((id) => ({ id, zone: id, weight: 1 })),
  { n: 2, partitionBits: 8 },
);

function membershipOf(self: string, addresses: Record<string, string>): MembershipView {
  const member = (id: string): MemberRecord | undefined => {
    const address = addresses[id];
    return address === undefined ? undefined : { id, address, zone: id, weight: 1, state: 'active', incarnation: 1, heartbeat: 1 };
  };
  return {
    self,
    ring: () => ring,
    pendingRing: () => ring,
    member,
    isUp: () => true,
    statuses: () => [],
    onChange: () => () => undefined,
  };
}

/** A replica and its anti-entropy (tree built, no timer running), on real time. */
async function nodeOf(id: string, addresses: Record<string, string>, transport: Transport): Promise<{ replica: LocalReplica; ae: AntiEntropy }> {
  const store = new MemoryStore();
  await store.open();
  cleanups.push(() => store.close());
  const log = silentLogger();
  const random = seededRandom(id.charCodeAt(0));
  const replica = new LocalReplica({ store, random, log }, { actor: `${id}.e1` });
  await replica.start();
  const ae = new AntiEntropy(
    { store, replica, membership: membershipOf(id, addresses), transport, clock: systemClock, timers: systemTimers, random, log, metrics: new Metrics(id) },
    { reaper: false, timeoutMs: 30_000 },
  );
  await ae.rebuild();
  cleanups.push(() => ae.stop());
  return { replica, ae };
}

/** Node b behind the internal routes with their default body limit, as node.ts serves them. */
async function peerOverHttp(): Promise<{ address: string; replica: LocalReplica }> {
  const app = Fastify();
  const node = await nodeOf('b', {}, { send: () => Promise.reject(new Error('b sends nothing here')), close: async () => undefined });
  await app.register(internalRoutes, { handlers: node.ae.handlers(), secret: SECRET });
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => app.close());
  return { address: `127.0.0.1:${(app.server.address() as { port: number }).port}`, replica: node.replica };
}

describe('an exchange with a peer over HTTP', () => {
  it('repairs the peer when the copies it must push exceed the internal body limit (70 values of the largest size a client may write)', async () => {
    // 70 keys of 1 MiB that only a holds (written while b was cut off): fewer than one
    // repair batch (256 keys), but as one aae-repair message 70 MiB, above the 64 MiB b accepts.
    const keys = Array.from({ length: 70 }, (_, i) => `big${i}`);
    expect(keys.length * MAX_VALUE_BYTES).toBeGreaterThan(INTERNAL_BODY_LIMIT);
    const b = await peerOverHttp();
    const transport = new HttpTransport({ clock: systemClock, timers: systemTimers }, { secret: SECRET });
    cleanups.push(() => transport.close());
    const a = await nodeOf('a', { b: b.address }, transport);
    for (const [i, k] of keys.entries()) {
      const value = new Uint8Array(MAX_VALUE_BYTES).fill(i % 251);
      await a.replica.coordinate(ring.partitionOf(k), k, {}, { value, contentType: 'application/octet-stream', deleted: false }, 1);
    }

    const result = await a.ae.exchangeWith('b');

    expect(result.error).toBeUndefined();
    expect(result.outcome).toBe('repaired');
    const missing: string[] = [];
    for (const [i, k] of keys.entries()) {
      const got = await b.replica.read(ring.partitionOf(k), k);
      if (got?.siblings[0]?.value[0] !== i % 251 || got.siblings[0].value.length !== MAX_VALUE_BYTES) missing.push(k);
    }
    expect(missing).toEqual([]);
  }, 60_000);

  it('gets 70 values of the largest default size in replies of at most MAX_MESSAGE_COPY_BYTES (plus one copy)', async () => {
    // 70 keys of 1 MiB that only b holds (written while a was cut off): fewer than one repair
    // batch (256 keys), so one aae-fetch asks for all of them.
    const keys = Array.from({ length: 70 }, (_, i) => `big${i}`);
    const b = await peerOverHttp();
    const replies: number[] = [];
    const transport = new HttpTransport(
      { clock: systemClock, timers: systemTimers },
      {
        secret: SECRET,
        onTraffic: (route, direction, bytes) => {
          if (route === 'aae-fetch' && direction === 'received') replies.push(bytes);
        },
      },
    );
    cleanups.push(() => transport.close());
    const a = await nodeOf('a', { b: b.address }, transport);
    for (const [i, k] of keys.entries()) {
      const value = new Uint8Array(MAX_VALUE_BYTES).fill(i % 251);
      await b.replica.coordinate(ring.partitionOf(k), k, {}, { value, contentType: 'application/octet-stream', deleted: false }, 1);
    }

    const result = await a.ae.exchangeWith('b');

    expect([result.outcome, result.error, result.keysRepaired]).toEqual(['repaired', undefined, 70]);
    // Before: one reply of ~70 MiB (and 200 keys: ~200 MiB), held whole on both sides.
    expect(Math.max(...replies)).toBeLessThanOrEqual(MAX_MESSAGE_COPY_BYTES + MAX_VALUE_BYTES);
    expect(replies.length).toBeGreaterThanOrEqual(Math.ceil((keys.length * MAX_VALUE_BYTES) / MAX_MESSAGE_COPY_BYTES));
    const missing: string[] = [];
    for (const [i, k] of keys.entries()) {
      const got = await a.replica.read(ring.partitionOf(k), k);
      if (got?.siblings[0]?.value[0] !== i % 251 || got.siblings[0].value.length !== MAX_VALUE_BYTES) missing.push(k);
    }
    expect(missing).toEqual([]);
  }, 60_000);
});
