import { describe, expect, it } from 'vitest';
import { allHoldTombstone, isReapable } from '../../../src/antientropy/reaper.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { LocalReplica } from '../../../src/replica/local-replica.js';
import { seededRandom } from '../../../src/runtime/index.js';
import { MemoryStore } from '../../../src/storage/index.js';
import { merge, mint, type VersionedObject, type VersionStamp } from '../../../src/version/index.js';

const enc = new TextEncoder();
const value = (s: string) => ({ value: enc.encode(s), contentType: 'text/plain', deleted: false });
const tomb = { value: new Uint8Array(0), contentType: 'text/plain', deleted: true };
const HOUR = 3_600_000;

function tombstoneAt(t: number, actor = 'a.1'): VersionedObject {
  const live = mint(undefined, {}, value('v'), actor, t - 10).object;
  return mint(live, live.clock, tomb, actor, t).object;
}

describe('isReapable', () => {
  it('needs every sibling deleted and the newest older than the grace period', () => {
    const t = tombstoneAt(1000);
    expect(isReapable(t, 1000 + HOUR - 1, HOUR)).toBe(false);
    expect(isReapable(t, 1000 + HOUR, HOUR)).toBe(true);
    const live = mint(undefined, {}, value('v'), 'a.1', 0).object;
    expect(isReapable(live, 10 * HOUR, HOUR)).toBe(false);
    // A tombstone concurrent with a live value is not a tombstone.
    const mixed = merge(tombstoneAt(0, 'a.1'), mint(undefined, {}, value('w'), 'b.1', 0).object);
    expect(mixed.siblings.length).toBe(2);
    expect(isReapable(mixed, 10 * HOUR, HOUR)).toBe(false);
    // Two concurrent tombstones: the newer one starts the grace period.
    const two = merge(tombstoneAt(0, 'a.1'), tombstoneAt(5 * HOUR, 'b.1'));
    expect(isReapable(two, 5 * HOUR + HOUR - 1, HOUR)).toBe(false);
    expect(isReapable(two, 6 * HOUR, HOUR)).toBe(true);
    expect(isReapable({ clock: { x: 1 }, siblings: [] }, 10 * HOUR, HOUR)).toBe(false);
  });
});

describe('allHoldTombstone', () => {
  it('is true only when every answer is exactly the same tombstone version', () => {
    const t = tombstoneAt(1000);
    const other = tombstoneAt(1000, 'b.1');
    expect(allHoldTombstone(t, [t, t, t])).toBe(true);
    expect(allHoldTombstone(t, [t, undefined, t])).toBe(false);
    expect(allHoldTombstone(t, [t, other])).toBe(false);
    const older = mint(undefined, {}, value('v'), 'a.1', 990).object;
    expect(allHoldTombstone(t, [t, older])).toBe(false);
  });
});

describe('LocalReplica.reap (conditional delete)', () => {
  async function replica() {
    const store = new MemoryStore();
    await store.open();
    const r = new LocalReplica({ store, random: seededRandom(1), log: silentLogger() }, { actor: 'a.1' });
    await r.start();
    const seen: [string, VersionStamp | undefined, VersionedObject | undefined][] = [];
    r.onWrite((_p, key, before, after) => seen.push([key, before, after]));
    return { store, r, seen };
  }

  it('deletes the exact tombstone version and tells listeners the key is gone', async () => {
    const { r, seen, store } = await replica();
    await r.coordinate(3, 'k', {}, value('v'), 0);
    const live = (await r.read(3, 'k'))!;
    const { object: t } = await r.coordinate(3, 'k', live.clock, tomb, 10);
    expect(await r.reap(3, 'k', t)).toBe(true);
    expect(await r.read(3, 'k')).toBeUndefined();
    const last = seen[seen.length - 1]!;
    expect(last[0]).toBe('k');
    expect(last[2]).toBeUndefined();
    expect(last[1]).toEqual(t);
    expect(await r.reap(3, 'k', t)).toBe(false); // already gone
    await store.close();
  });

  it('keeps the key if it changed since the check, or is not a tombstone', async () => {
    const { r, store } = await replica();
    const { object: v } = await r.coordinate(3, 'k', {}, value('v'), 0);
    expect(await r.reap(3, 'k', v)).toBe(false); // live value
    const { object: t } = await r.coordinate(3, 'k', v.clock, tomb, 10);
    // A concurrent write arrives after the reaper's check.
    await r.apply(3, 'k', mint(undefined, {}, value('late'), 'b.1', 20).object);
    expect(await r.reap(3, 'k', t)).toBe(false);
    expect((await r.read(3, 'k'))?.siblings.length).toBe(2);
    // A newer tombstone that the check did not see.
    const { object: t2 } = await r.coordinate(3, 'k', (await r.read(3, 'k'))!.clock, tomb, 30);
    expect(await r.reap(3, 'k', t)).toBe(false);
    expect(await r.reap(3, 'k', t2)).toBe(true);
    await store.close();
  });
});
