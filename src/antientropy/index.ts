/** Active anti-entropy: tictac-style hash trees (pure), exchanges and tombstone reaping (drivers). */
export {
  ANTI_ENTROPY_DEFAULTS,
  AntiEntropy,
  type AntiEntropyComponents,
  type AntiEntropyInit,
  type ExchangeOutcome,
  type ExchangeResult,
} from './exchange.js';
export { AAE_ROUTES } from './messages.js';
export { coReplicas, jittered, nextPeer, sharedPartitions, TokenBucket } from './plan.js';
export {
  allHoldTombstone,
  isReapable,
  REAPER_DEFAULTS,
  type ReaperComponents,
  type ReaperInit,
  type ReapPassResult,
  TombstoneReaper,
} from './reaper.js';
export {
  bucketCount,
  bucketHashes,
  diffBuckets,
  diffKeys,
  diffLeaves,
  HashTree,
  type KeyDigests,
  keyVersionHash,
  leafHashes,
  leafOf,
  MAX_BUCKETS,
  partitionsInBuckets,
  root,
  treeOf,
} from './tree.js';
