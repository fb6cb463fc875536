/**
 * ringkv/client: the SDK (SPEC §3). Imports nothing from the server, only src/runtime/.
 *
 *   import { Client, resolvers } from 'ringkv/client';
 */
export { CLIENT_DEFAULTS, Client } from './client.js';
export { BACKOFF_DEFAULTS, backoffDelay } from './backoff.js';
export { BREAKER_DEFAULTS, type BreakerPermit, type BreakerState, CircuitBreaker } from './breaker.js';
export { nodesFromCluster } from './discovery.js';
export {
  AbortError,
  CircuitOpenError,
  ClientClosedError,
  ConnectionError,
  InvalidArgumentError,
  type NodeFailure,
  ProtocolError,
  QuorumError,
  RequestError,
  ResolveError,
  RingkvClientError,
  ServerError,
  TimeoutError,
  UnavailableError,
} from './errors.js';
export { canonicalJson, jsonSetUnion, lastWriterWins, resolvers } from './resolvers.js';
export type {
  BackoffOptions,
  BreakerOptions,
  CallOptions,
  ClientOptions,
  ClusterMember,
  ClusterView,
  DeleteOptions,
  DeleteResult,
  GetOptions,
  GetResult,
  Mutator,
  PutOptions,
  PutResult,
  Quorum,
  Resolver,
  Sibling,
  UpdateOptions,
  UpdateResult,
  WriteOptions,
} from './types.js';
export { MAX_KEY_BYTES } from './validate.js';
