import { afterEach, describe, expect, it } from 'vitest';
import { STRAY_CLEANER_DEFAULTS, StrayCleaner, type StrayCleanerInit } from '../../../src/handoff/transfer.js';
import { foreignRuns } from '../../../src/handoff/transfer-plan.js';
import type { Membership } from '../../../src/membership/index.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { LocalReplica } from '../../../src/replica/local-replica.js';
import { buildRing } from '../../../src/ring/ring.js';
import type { Ring } from '../../../src/ring/types.js';
import { ManualTime, seededRandom } from '../../../src/runtime/index.js';
import { compareBytes, MemoryStore, objectKeyPartition, type Store } from '../../../src/storage/index.js';
import type { PeerAddress, SendOptions, Transport } from '../../../src/transport/transport.js';
import { rotStoredObject } from '../../helpers/rot.js';

const enc = new TextEncoder();
const ringOf = (ids: string[], n: number): Ring =>
  buildRing(
    ids.map((id) => ({ id, zone: id, weight: 1 })),
    { n, partitionBits: 8 },
  );

/** What the cleaner's scans did: each object key yielded (in order) and each range opened. */
interface Scans {
  readonly yielded: Uint8Array[];
  readonly opened: Uint8Array[];
}

/** `store` with its object-key scans recorded; every other method runs on the real store. */
function recording(store: MemoryStore, scans: Scans): Store {
  const keys: Store['keys'] = (ns, range) => {
    const inner = store.keys(ns, range);
    if (ns !== 'obj') return inner;
    scans.opened.push(range?.gte ?? range?.gt ?? new Uint8Array(0));
    return (async function* () {
      for await (const k of inner) {
        scans.yielded.push(k);
        yield k;
      }
    })();
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'keys') return keys;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as unknown as Store;
}

/** Replica writes to the owners: all acknowledged, or (failing) all refused, or those `refusing` refused. */
class OwnerWire implements Transport {
  readonly sent: PeerAddress[] = [];
  constructor(
    private readonly failing = false,
    private readonly refusing: readonly PeerAddress[] = [],
  ) {}
  async send(to: PeerAddress, _route: string, _body: Uint8Array, _opts: SendOptions): Promise<Uint8Array> {
    this.sent.push(to);
    if (this.failing || this.refusing.includes(to)) throw new Error('owner unreachable');
    return new Uint8Array(0);
  }
  async close(): Promise<void> {}
}

const opened: MemoryStore[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

async function setup(
  ring: Ring,
  opts: { init?: Partial<StrayCleanerInit>; failing?: boolean; down?: readonly string[]; refusing?: readonly string[] } = {},
) {
  const mem = new MemoryStore();
  await mem.open();
  opened.push(mem);
  const scans: Scans = { yielded: [], opened: [] };
  const store = recording(mem, scans);
  const time = new ManualTime();
  // The replica on the store itself: its own start-up key scan (KeyFilter) is not the cleaner's.
  const replica = new LocalReplica({ store: mem, random: seededRandom(1), log: silentLogger() }, { actor: 'a.e1' });
  await replica.start();
  const view = { ring };
  const membership = {
    self: 'a',
    ring: () => view.ring,
    pendingRing: () => view.ring,
    member: (id: string) => ({ id, address: `${id}:7000` }),
    isUp: (id: string) => !(opts.down ?? []).includes(id),
  } as unknown as Membership;
  const wire = new OwnerWire(
    opts.failing,
    (opts.refusing ?? []).map((id) => `${id}:7000`),
  );
  const cleaner = new StrayCleaner(
    { store, replica, membership, transport: wire, clock: time, log: silentLogger() },
    { ...STRAY_CLEANER_DEFAULTS, ...opts.init },
  );
  /** Three objects in each of `partitions`. */
  const fill = async (partitions: Iterable<number>): Promise<void> => {
    for (const p of partitions)
      for (let j = 0; j < 3; j++)
        await replica.coordinate(p, `k${p}-${j}`, {}, { value: enc.encode('v'), contentType: 'text/plain', deleted: false }, time.now());
  };
  const stored = async (): Promise<Uint8Array[]> => {
    const out: Uint8Array[] = [];
    for await (const k of mem.keys('obj')) out.push(k);
    return out;
  };
  return { view, scans, cleaner, wire, fill, stored, mem };
}

const owns = (ring: Ring, p: number): boolean => ring.preferenceList(p).includes('a');
const all = (ring: Ring): number[] => Array.from({ length: ring.partitions }, (_, p) => p);
const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex');

describe('StrayCleaner', () => {
  it('foreignRuns: the maximal runs of partitions a node does not replicate, and nothing else', () => {
    const ring = ringOf(['a', 'b', 'c', 'd'], 2);
    const runs = foreignRuns(ring, 'a');
    const inRuns = new Set<number>();
    for (const r of runs) for (let p = r.first; p <= r.last; p++) inRuns.add(p);
    for (const p of all(ring)) expect(inRuns.has(p), `partition ${p}`).toBe(!owns(ring, p));
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.first).toBeGreaterThan(runs[i - 1]!.last + 1);
    expect(foreignRuns(ringOf(['a'], 3), 'a')).toEqual([]);
  });

  for (const maxScan of [7, 40]) {
    it(`maxScan ${maxScan}: one pass reads every key of a foreign partition exactly once, and no other key`, async () => {
      // Owners refuse the copies, so nothing is dropped and each pass sees the same strays.
      const ring = ringOf(['a', 'b', 'c', 'd'], 2);
      const s = await setup(ring, { init: { maxScan, batchSize: 5 }, failing: true });
      await s.fill(all(ring));
      const foreign = (await s.stored()).filter((k) => !owns(ring, objectKeyPartition(k)));
      expect(foreign.length).toBeGreaterThan(0);
      for (let i = 0; i < 5000 && s.scans.yielded.length < 2 * foreign.length + 10; i++) await s.cleaner.step();
      // A pass reads in key order; the next one starts again from the lowest key.
      const y = s.scans.yielded;
      let end = 1;
      while (end < y.length && compareBytes(y[end - 1]!, y[end]!) < 0) end++;
      expect(end).toBeLessThan(y.length); // a second pass began
      expect(y.slice(0, end).map(hex)).toEqual(foreign.map(hex));
    });
  }

  it('hands the copies of foreign partitions to their owners and drops them; keeps every other', async () => {
    const ring = ringOf(['a', 'b', 'c', 'd'], 2);
    const s = await setup(ring, { init: { maxScan: 7, batchSize: 4 } });
    await s.fill(all(ring));
    for (let i = 0; i < 5000; i++) await s.cleaner.step();
    const left = await s.stored();
    expect(left.length).toBe(3 * all(ring).filter((p) => owns(ring, p)).length);
    expect(left.every((k) => owns(ring, objectKeyPartition(k)))).toBe(true);
    expect(s.wire.sent.length).toBeGreaterThan(0);
    expect(s.wire.sent).not.toContain('a:7000');
  });

  it('keeps each copy one of whose owners is down or refuses it; hands over and drops the rest', async () => {
    const ring = ringOf(['a', 'b', 'c', 'd', 'e'], 2);
    const s = await setup(ring, { init: { maxScan: 7, batchSize: 4 }, down: ['b'], refusing: ['c'] });
    await s.fill(all(ring));
    for (let i = 0; i < 5000; i++) await s.cleaner.step();
    const held = (p: number): boolean => ring.preferenceList(p).some((o) => o === 'b' || o === 'c');
    const keep = all(ring).filter((p) => owns(ring, p) || held(p));
    expect(all(ring).some((p) => !owns(ring, p) && held(p))).toBe(true);
    expect(all(ring).some((p) => !owns(ring, p) && !held(p))).toBe(true);
    const left = await s.stored();
    expect(new Set(left.map((k) => objectKeyPartition(k)))).toEqual(new Set(keep));
    expect(left.length).toBe(3 * keep.length);
    // A member that is down is not even sent to; one that refuses was asked.
    expect(s.wire.sent).not.toContain('b:7000');
    expect(s.wire.sent).toContain('c:7000');
  });

  it('drops a foreign copy that rotted on disk (nothing to hand over), and hands over and drops every other', async () => {
    const ring = ringOf(['a', 'b', 'c', 'd'], 2);
    const s = await setup(ring, { init: { maxScan: 7, batchSize: 4 } });
    await s.fill(all(ring));
    const rotten = (await s.stored()).find((k) => !owns(ring, objectKeyPartition(k)))!;
    await rotStoredObject(s.mem, rotten);
    for (let i = 0; i < 5000; i++) await s.cleaner.step();
    const left = (await s.stored()).map(hex);
    expect(left).not.toContain(hex(rotten));
    expect(left.length).toBe(3 * all(ring).filter((p) => owns(ring, p)).length);
  });

  it('a node that replicates every partition opens no scan at all', async () => {
    const ring = ringOf(['a', 'b', 'c'], 3);
    const s = await setup(ring);
    await s.fill(all(ring));
    for (let i = 0; i < 5; i++) expect(await s.cleaner.step()).toBe(0);
    expect(s.scans.opened).toEqual([]);
    expect((await s.stored()).length).toBe(3 * ring.partitions);
  });

  it('a ring change mid-pass starts the pass over, so partitions behind the cursor are not missed', async () => {
    const before = ringOf(['a', 'b', 'c', 'd'], 2);
    const after = ringOf(['a', 'b', 'c', 'd', 'e'], 2);
    // Copies only in low partitions that this node replicates now, some of which the new
    // ring moves away: no strays at all until the ring changes.
    const low = all(before).filter((p) => p < 64 && owns(before, p));
    const moving = low.filter((p) => !owns(after, p));
    expect(moving.length).toBeGreaterThan(0);
    const s = await setup(before, { init: { maxScan: 20 } });
    await s.fill(low);
    // Step until the pass is past the low partitions (an empty range at a time).
    for (let i = 0; i < 1000; i++) {
      await s.cleaner.step();
      const last = s.scans.opened.at(-1);
      if (last !== undefined && objectKeyPartition(last) >= 128) break;
    }
    expect(objectKeyPartition(s.scans.opened.at(-1)!)).toBeGreaterThanOrEqual(128);
    s.view.ring = after;
    for (let i = 0; i < 5000; i++) await s.cleaner.step();
    const left = await s.stored();
    expect(left.filter((k) => moving.includes(objectKeyPartition(k)))).toEqual([]);
    expect(left.length).toBe(3 * (low.length - moving.length));
  });
});
