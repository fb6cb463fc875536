import { MemoryLevel } from 'memory-level';
import { STORE_LAYOUT } from './layout.js';
import { SublevelStore } from './sublevel-store.js';

// memory-level stores and returns the very buffers it is given, so both directions copy:
// otherwise a caller mutating its value after put(), or a value it read, would rewrite the
// store behind its back (LevelDB cannot do that, and the contract suite checks it).
const copy = (value: Uint8Array): Uint8Array => new Uint8Array(value);

/**
 * An in-memory Store (memory-level) for unit tests and simulations. Same layout, ordering
 * and atomicity as {@link LevelStore}; nothing survives the process. Data does survive
 * close() followed by open() on the same instance.
 */
export class MemoryStore extends SublevelStore {
  /** `objectCacheBytes`: as LevelStore's object cache (default none; reads are async here). */
  constructor(init: { readonly objectCacheBytes?: number } = {}) {
    super({
      db: new MemoryLevel<Uint8Array, Uint8Array>({
        keyEncoding: STORE_LAYOUT.keyEncoding,
        valueEncoding: STORE_LAYOUT.valueEncoding,
      }),
      writeOptions: {},
      ownInput: copy,
      ownOutput: copy,
      openFailed: (cause) => new Error(`cannot open memory store: ${String(cause)}`, { cause }),
      ...(init.objectCacheBytes ? { readCache: { ns: 'obj', maxBytes: init.objectCacheBytes } } : {}),
    });
  }
}
