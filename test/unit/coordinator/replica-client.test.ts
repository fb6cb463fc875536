import { afterEach, describe, expect, it } from 'vitest';
import { decodeReadReply, decodeReplicaAnswer, encodeString, encodeWriteBatch, ROUTES } from '../../../src/coordinator/messages.js';
import { ReplicaClient } from '../../../src/coordinator/replica-client.js';
import type { MembershipView } from '../../../src/membership/types.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { LocalReplica } from '../../../src/replica/local-replica.js';
import { seededRandom } from '../../../src/runtime/index.js';
import { MemoryStore, objectKey } from '../../../src/storage/index.js';
import type { BatchOp } from '../../../src/storage/store.js';
import type { Transport } from '../../../src/transport/transport.js';
import { encodeObject, type VersionedObject } from '../../../src/version/index.js';

const write = (v: string) => ({ value: new TextEncoder().encode(v), contentType: 'text/plain', deleted: false });
const text = (obj: VersionedObject | undefined): string[] =>
  (obj?.siblings ?? []).map((s) => new TextDecoder().decode(s.value)).sort();

/** A memory store that fails the write of one chosen key (a disk error), once. */
class FlakyStore extends MemoryStore {
  failKey: string | undefined;
  override async batch(ops: readonly BatchOp[]): Promise<void> {
    const fail = this.failKey;
    if (fail !== undefined && ops.some((op) => new TextDecoder().decode(op.key).endsWith(fail))) {
      this.failKey = undefined;
      throw new Error('disk error');
    }
    return super.batch(ops);
  }
}

const stores: MemoryStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

/**
 * A replica over a fresh memory store (with an object cache, as LevelStore has by default).
 * `seed` fills the store before the replica starts (what it held before a restart).
 */
async function replica(actor: string, seed?: (store: FlakyStore) => Promise<void>): Promise<{ r: LocalReplica; store: FlakyStore }> {
  const store = new FlakyStore({ objectCacheBytes: 1 << 20 });
  stores.push(store);
  await store.open();
  await seed?.(store);
  const r = new LocalReplica({ store, random: seededRandom(actor.length), log: silentLogger() }, { actor });
  await r.start();
  return { r, store };
}

/** The server-side handler of `route` on a node whose ring puts every key in partition 3. */
function handlerOf(r: LocalReplica, route: string): (body: Uint8Array) => Promise<Uint8Array> {
  const membership = { self: 'n9', ring: () => ({ partitionOf: () => 3 }) } as unknown as MembershipView;
  const client = new ReplicaClient({ transport: {} as Transport, replica: r, membership }, { hintedHandoff: true });
  const handler = client.handlers().get(route);
  if (!handler) throw new Error(`no handler for ${route}`);
  return (body) => handler(body, undefined);
}

const writeBatch = (r: LocalReplica) => handlerOf(r, ROUTES.replicaWriteBatch);
const readFrom =
  (r: LocalReplica) =>
  async (key: string): Promise<VersionedObject | undefined> =>
    decodeReadReply(await handlerOf(r, ROUTES.replicaRead)(encodeString(key)));

describe('ReplicaClient, replica-write-batch (hint delivery and transfers)', () => {
  it('merges every item, two concurrent versions of one key included, before it answers (600 items)', async () => {
    const a = await replica('na');
    const b = await replica('nb');
    const target = await replica('nt');
    const x1 = (await a.r.coordinate(3, 'x', {}, write('x from a'), 1)).object;
    const x2 = (await b.r.coordinate(3, 'x', {}, write('x from b'), 2)).object;
    const items = [{ key: 'x', object: encodeObject(x1) }];
    // More items than one chunk of concurrent merges (256).
    for (let i = 0; i < 600; i++) {
      const o = (await a.r.coordinate(3, `k${i}`, {}, write(`v${i}`), 3)).object;
      items.push({ key: `k${i}`, object: encodeObject(o) });
    }
    items.push({ key: 'x', object: encodeObject(x2) });
    await writeBatch(target.r)(encodeWriteBatch(items));
    expect(text(await target.r.read(3, 'x'))).toEqual(['x from a', 'x from b']);
    for (let i = 0; i < 600; i++) expect(text(await target.r.read(3, `k${i}`))).toEqual([`v${i}`]);
  });

  it('fails the batch when one item cannot be stored, after the others landed; a resend completes it', async () => {
    const a = await replica('na');
    const target = await replica('nt');
    const items = [];
    for (const key of ['p', 'q', 'r']) {
      const o = (await a.r.coordinate(3, key, {}, write(key), 1)).object;
      items.push({ key, object: encodeObject(o) });
    }
    const body = encodeWriteBatch(items);
    target.store.failKey = 'q';
    await expect(writeBatch(target.r)(body)).rejects.toThrow('disk error');
    expect(text(await target.r.read(3, 'p'))).toEqual(['p']);
    expect(await target.r.read(3, 'q')).toBeUndefined();
    expect(text(await target.r.read(3, 'r'))).toEqual(['r']);
    await writeBatch(target.r)(body);
    for (const key of ['p', 'q', 'r']) expect(text(await target.r.read(3, key))).toEqual([key]);
  });
});

describe('ReplicaClient, replica-read (a peer serves its stored bytes undecoded)', () => {
  it('answers the stored version, twice (from the cache the second time), and undefined for a missing key', async () => {
    const { r } = await replica('nr');
    const read = readFrom(r);
    const stored = (await r.coordinate(3, 'k', {}, write('value'), 1)).object;
    for (let i = 0; i < 2; i++) {
      const got = await read('k');
      expect(text(got)).toEqual(['value']);
      expect(got?.clock).toEqual(stored.clock);
    }
    expect(await read('missing')).toBeUndefined();
  });

  it('a corrupt stored copy fails the read at the reader, with the checksum named', async () => {
    const { r, store } = await replica('nr');
    const good = encodeObject((await r.coordinate(3, 'k', {}, write('value'), 1)).object);
    const bad = good.slice();
    bad[bad.length - 6] = (bad[bad.length - 6] as number) ^ 0xff;
    await store.put('obj', objectKey(3, 'k'), bad);
    await expect(readFrom(r)('k')).rejects.toThrow(/corrupt object.*checksum/);
  });
});

describe('ReplicaClient, replica-read-version (the version alone when the replica knows it)', () => {
  const readVersion = (r: LocalReplica) => async (key: string) =>
    decodeReplicaAnswer(await handlerOf(r, ROUTES.replicaReadVersion)(encodeString(key)));

  it('answers the version of a key it wrote, the whole object of one it must read, and undefined for a missing key', async () => {
    const { r } = await replica('nv');
    const stored = (await r.coordinate(3, 'k', {}, write('value'), 1)).object;
    const known = await readVersion(r)('k');
    expect(known.object).toBeUndefined();
    expect(known.stamp?.clock).toEqual(stored.clock);
    // The clock and the dots, nothing else: no value, nothing that could pass for the object.
    expect(known.stamp?.siblings).toEqual(stored.siblings.map((s) => ({ dot: s.dot })));
    // The same data on a replica that has not written it since it started: it reads and sends it.
    const { r: fresh } = await replica('nw', (store) => store.put('obj', objectKey(3, 'k'), encodeObject(stored)));
    const whole = await readVersion(fresh)('k');
    expect(whole.stamp).toBeUndefined();
    expect(text(whole.object)).toEqual(['value']);
    expect(await readVersion(r)('missing')).toEqual({ object: undefined });
  });

  it('a version reply is checksummed like an object: a flipped byte fails the read', async () => {
    const { r } = await replica('nv');
    await r.coordinate(3, 'k', {}, write('value'), 1);
    const reply = await handlerOf(r, ROUTES.replicaReadVersion)(encodeString('k'));
    const bad = reply.slice();
    bad[3] = (bad[3] as number) ^ 0xff;
    expect(() => decodeReplicaAnswer(bad)).toThrow(/corrupt object/);
  });
});

describe('ReplicaClient.write', () => {
  it('an object that cannot be encoded comes back as a rejected promise, not a throw (the caller counts that replica as failed)', async () => {
    const sent: string[] = [];
    const transport = {
      send: async (_to: string, route: string) => {
        sent.push(route);
        return new Uint8Array(0);
      },
    } as unknown as Transport;
    const membership = { self: 'n1', ring: () => ({ partitionOf: () => 3 }) } as unknown as MembershipView;
    const client = new ReplicaClient({ transport, replica: {} as LocalReplica, membership }, { hintedHandoff: true });
    // A counter of 0 breaks the object invariant: encoding refuses it.
    const bad = { clock: { n1: 0 }, siblings: [] } as unknown as VersionedObject;
    let result: Promise<unknown> | undefined;
    expect(() => {
      result = client.write('127.0.0.1:1', 'k', bad, [], 1000);
    }).not.toThrow();
    await expect(result).rejects.toThrow(/cannot encode object/);
    expect(sent).toEqual([]);
  });
});
