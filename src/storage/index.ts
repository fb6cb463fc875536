export type { BatchOp, Namespace, RangeOptions, Store } from './store.js';
export { NAMESPACES } from './store.js';
export {
  compareBytes,
  hintKey,
  hintOwnerRange,
  MAX_PARTITION,
  objectKey,
  objectKeyPartition,
  parseHintKey,
  parseObjectKey,
  partitionRange,
  utf8,
} from './keys.js';
export { STORE_LAYOUT } from './layout.js';
export type { LevelStoreInit, StoreOpenFailure } from './level-store.js';
export { LEVEL_STORE_DEFAULTS, LevelStore, StoreOpenError } from './level-store.js';
export { MemoryStore } from './memory-store.js';
export { MAX_VALUE_BYTES as MAX_CACHED_OBJECT_BYTES } from './read-cache.js';
export { SublevelStore } from './sublevel-store.js';
