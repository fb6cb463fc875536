import { MemoryLevel } from 'memory-level';
import { STORE_LAYOUT, type Store, SublevelStore } from '../../src/storage/index.js';

/**
 * Flip one bit of a stored object (`objectKey` bytes), as a rotting disk would: the copy then
 * fails its checksum. Through the store, so its read cache forgets the key; the replica's own
 * caches (version cache, decoded objects) still hold what they knew, as with real rot. For rot
 * the store's read cache does not see either, see RottableStore.
 */
export async function rotStoredObject(store: Store, objectKey: Uint8Array): Promise<void> {
  const bytes = await store.get('obj', objectKey);
  if (bytes === undefined) throw new Error('rotStoredObject: no such object');
  bytes[3] = (bytes[3] as number) ^ 0x01;
  await store.put('obj', objectKey, bytes);
}

const copy = (value: Uint8Array): Uint8Array => new Uint8Array(value);

/**
 * An in-memory store with an object read cache (as LevelStore has) whose database the test
 * can reach beneath that cache: `rotBeneathCache` damages a stored object while the cache
 * keeps the healthy bytes it read before, which is what a disk going bad does.
 */
export class RottableStore extends SublevelStore {
  readonly level: MemoryLevel<Uint8Array, Uint8Array>;

  constructor(objectCacheBytes = 1 << 20) {
    const level = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: STORE_LAYOUT.keyEncoding, valueEncoding: STORE_LAYOUT.valueEncoding });
    super({
      db: level,
      writeOptions: {},
      ownInput: copy,
      ownOutput: copy,
      openFailed: (cause) => new Error(`cannot open rottable store: ${String(cause)}`, { cause }),
      readCache: { ns: 'obj', maxBytes: objectCacheBytes },
    });
    this.level = level;
  }

  async rotBeneathCache(objectKey: Uint8Array): Promise<void> {
    const sub = this.level.sublevel<Uint8Array, Uint8Array>(STORE_LAYOUT.sublevels.obj, {
      separator: STORE_LAYOUT.separator,
      keyEncoding: STORE_LAYOUT.keyEncoding,
      valueEncoding: STORE_LAYOUT.valueEncoding,
    });
    const bytes = await sub.get(objectKey);
    if (bytes === undefined) throw new Error('rotBeneathCache: no such object');
    const rotten = copy(bytes);
    rotten[3] = (rotten[3] as number) ^ 0x01;
    await sub.put(objectKey, rotten);
  }
}
