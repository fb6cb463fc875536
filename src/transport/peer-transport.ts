import type { Random } from '../runtime/random.js';
import { type BatchingInit, withBatching } from './batching.js';
import type { BreakerHandle, BreakerInit, BreakerStateListener } from './breaker.js';
import { HttpTransport, type HttpTransportComponents, type HttpTransportInit } from './http.js';
import { resilientTransport } from './resilient.js';
import type { RetryInit } from './retry.js';
import type { Transport } from './transport.js';

export interface PeerTransportComponents extends HttpTransportComponents {
  readonly random: Random;
}

export interface PeerTransportInit extends HttpTransportInit {
  readonly retry?: RetryInit;
  readonly breaker?: Omit<BreakerInit, 'onStateChange'>;
  /** Every breaker transition, per peer (the node's metrics gauge hooks this). */
  readonly onBreakerStateChange?: BreakerStateListener;
  /** Per-peer batching of the request path's replica calls; `false` turns it off. */
  readonly batching?: BatchingInit | false;
  /** The size of every batch sent (the node's metrics histogram hooks this). */
  readonly onBatch?: (items: number) => void;
}

/**
 * The routes batched by default: the coordinator's replica writes and reads (ROUTES.replicaWrite,
 * ROUTES.replicaRead and ROUTES.replicaReadVersion in coordinator/messages.ts; a unit test keeps
 * the two in step). They
 * are small, idempotent and many; everything else (gossip, hint and anti-entropy transfers,
 * forwarded writes) is rarer or already batched, and goes out as it is.
 */
export const DEFAULT_BATCHED_ROUTES: readonly string[] = ['replica-write', 'replica-read', 'replica-read-version'];

/**
 * What node.ts uses to talk to peers: HttpTransport wrapped in circuit breakers and retries
 * (see resilientTransport for the order and why), and outermost per-peer batching of replica
 * calls (see withBatching), so a batch is retried and counted by the breaker as one call.
 * close() closes the HTTP pools.
 */
export function createPeerTransport(
  components: PeerTransportComponents,
  init: PeerTransportInit,
): { transport: Transport } & BreakerHandle {
  const { retry, breaker, onBreakerStateChange, batching, onBatch, ...http } = init;
  const resilient = resilientTransport(new HttpTransport(components, http), components, {
    ...(retry === undefined ? {} : { retry }),
    breaker: { ...breaker, ...(onBreakerStateChange === undefined ? {} : { onStateChange: onBreakerStateChange }) },
  });
  if (batching === false) return resilient;
  return {
    // Flush at the end of the I/O round: with 64 clients a node reads many requests per round,
    // and their replica calls then share one batch per peer (GET: ~3 -> ~5 items per batch,
    // ~10-20 % more GETs/s in the benchmark), at no added latency beyond the round itself.
    transport: withBatching(
      resilient.transport,
      { ...components, defer: setImmediate, ...(onBatch === undefined ? {} : { onBatch }) },
      batching ?? { routes: DEFAULT_BATCHED_ROUTES },
    ),
    breakerStates: resilient.breakerStates,
  };
}
