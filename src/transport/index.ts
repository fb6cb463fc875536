export type {
  InternalHandler,
  InternalHandlers,
  PeerAddress,
  SendOptions,
  Transport,
  TransportErrorKind,
} from './transport.js';
export { TransportError } from './transport.js';
export { MemoryNetwork } from './memory.js';
export type { HttpTransportComponents, HttpTransportInit, TransportLog } from './http.js';
export { HTTP_TRANSPORT_DEFAULTS, HttpTransport } from './http.js';
export type { RetryComponents, RetryInit } from './retry.js';
export { RETRY_DEFAULTS, withRetry } from './retry.js';
export type {
  BreakerComponents,
  BreakerHandle,
  BreakerInit,
  BreakerState,
  BreakerStateListener,
  CircuitBreakerTransport,
} from './breaker.js';
export { BREAKER_DEFAULTS, CircuitOpenError, withCircuitBreaker } from './breaker.js';
export type { ResilientComponents, ResilientInit } from './resilient.js';
export { resilientTransport } from './resilient.js';
export type { PeerTransportComponents, PeerTransportInit } from './peer-transport.js';
export { createPeerTransport, DEFAULT_BATCHED_ROUTES } from './peer-transport.js';
export type { BatchingComponents, BatchingInit } from './batching.js';
export { BATCH_ROUTE, BATCHING_DEFAULTS, isUnknownRouteError, withBatchRoute, withBatching } from './batching.js';
export type { Deadline, DeadlineCause } from './deadline.js';
export { deadlineError, raceSignal, startDeadline } from './deadline.js';
