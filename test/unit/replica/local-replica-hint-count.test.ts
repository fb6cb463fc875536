/**
 * LocalReplica's count of parked hints (pendingHints) must match the hints in the store: hint
 * delivery and a leaving node's hand-over both wait for it to reach 0.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/observability/logger.js';
import { LocalReplica } from '../../../src/replica/local-replica.js';
import { seededRandom } from '../../../src/runtime/index.js';
import { MemoryStore, parseHintKey } from '../../../src/storage/index.js';

const write = (v: string) => ({ value: new TextEncoder().encode(v), contentType: 'text/plain', deleted: false });

describe('LocalReplica hint count', () => {
  const stores: MemoryStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  async function replica(): Promise<{ r: LocalReplica; store: MemoryStore }> {
    const store = new MemoryStore();
    stores.push(store);
    await store.open();
    const r = new LocalReplica({ store, random: seededRandom(1), log: silentLogger() }, { actor: 'n1.abc' });
    await r.start();
    return { r, store };
  }

  async function storedHints(store: MemoryStore): Promise<{ owner: string; key: string; seq: Uint8Array }[]> {
    const out: { owner: string; key: string; seq: Uint8Array }[] = [];
    for await (const [k, v] of store.entries('hint')) {
      const h = parseHintKey(k);
      out.push({ owner: h.ownerId, key: h.key, seq: v });
    }
    return out;
  }

  /** Deliver (clear) every stored hint, as hint delivery does once the owners answer. */
  async function deliverAll(r: LocalReplica, store: MemoryStore): Promise<void> {
    for (const h of await storedHints(store)) await r.clearHint(h.owner, 0, h.key, h.seq);
  }

  it('an owner named twice in one write parks one hint and counts it once', async () => {
    const { r, store } = await replica();
    // hintsFor arrives from peers over the network (replica writes, hand-overs): a repeated
    // owner must not count a hint that is stored once.
    const first = await r.coordinate(0, 'k', {}, write('a'), 1, ['n2', 'n2']);
    expect((await storedHints(store)).length).toBe(1);
    expect(r.pendingHints).toBe(1);
    await r.apply(0, 'k2', first.object, ['n3', 'n3', 'n3']);
    await r.addHints(0, 'k3', ['n4', 'n4']);
    expect((await storedHints(store)).length).toBe(3);
    expect(r.pendingHints).toBe(3);
    await deliverAll(r, store);
    expect(await storedHints(store)).toEqual([]);
    // Otherwise the count stays above 0 for good: a leave waiting for it never ends.
    expect(r.pendingHints).toBe(0);
  });
});
