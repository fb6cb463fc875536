/** The ring: partitioning of the keyspace and preference lists (pure). */
export type { Ring, RingMember } from './types.js';
export type { RingOptions } from './ring.js';
export { buildRing, MAX_MEMBERS, MAX_PARTITION_BITS, PARTITION_BITS, PARTITION_COUNT } from './ring.js';
export { keyHash, mix32 } from './hash.js';
