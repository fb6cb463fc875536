import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/observability/logger.js';
import { LocalReplica } from '../../../src/replica/local-replica.js';
import { seededRandom } from '../../../src/runtime/index.js';
import { MemoryStore } from '../../../src/storage/index.js';
import type { BatchOp } from '../../../src/storage/store.js';

const write = (v: string) => ({ value: new TextEncoder().encode(v), contentType: 'text/plain', deleted: false });

/** A memory store whose next batch fails (a disk error), to provoke the failure path. */
class FlakyStore extends MemoryStore {
  failNext = false;
  override async batch(ops: readonly BatchOp[]): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('disk error');
    }
    return super.batch(ops);
  }
}

describe('LocalReplica', () => {
  const stores: MemoryStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  async function replica(): Promise<{ r: LocalReplica; store: FlakyStore }> {
    const store = new FlakyStore();
    stores.push(store);
    await store.open();
    const r = new LocalReplica({ store, random: seededRandom(1), log: silentLogger() }, { actor: 'n1.abc' });
    await r.start();
    return { r, store };
  }

  it('counts hints only once they are durable, and a failed write parks none', async () => {
    const { r, store } = await replica();
    await r.coordinate(0, 'k', {}, write('a'), 1, ['n2']);
    expect(r.pendingHints).toBe(1);
    // The same owner and key again: one hint, not two.
    await r.addHints(0, 'k', ['n2']);
    expect(r.pendingHints).toBe(1);
    store.failNext = true;
    await expect(r.coordinate(0, 'k2', {}, write('b'), 2, ['n3'])).rejects.toThrow('disk error');
    expect(r.pendingHints).toBe(1);
    expect(await r.read(0, 'k2')).toBeUndefined();
    store.failNext = true;
    await expect(r.addHints(0, 'k', ['n4'])).rejects.toThrow('disk error');
    expect(r.pendingHints).toBe(1);
  });

  it('mints under a fresh actor when it holds nothing for the key, then under its own', async () => {
    const { r } = await replica();
    const first = await r.coordinate(0, 'k', {}, write('a'), 1);
    expect(first.dot.actor).toMatch(/^n1\.abc~/);
    const second = await r.coordinate(0, 'k', first.object.clock, write('b'), 2);
    expect(second.dot.actor).toBe('n1.abc');
    expect(second.object.siblings).toHaveLength(1);
  });
});
