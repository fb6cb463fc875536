import type { Random } from '../runtime/random.js';
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
}

/**
 * What node.ts uses to talk to peers: HttpTransport wrapped in circuit breakers and retries
 * (see resilientTransport for the order and why). close() closes the HTTP pools.
 */
export function createPeerTransport(
  components: PeerTransportComponents,
  init: PeerTransportInit,
): { transport: Transport } & BreakerHandle {
  const { retry, breaker, onBreakerStateChange, ...http } = init;
  return resilientTransport(new HttpTransport(components, http), components, {
    ...(retry === undefined ? {} : { retry }),
    breaker: { ...breaker, ...(onBreakerStateChange === undefined ? {} : { onStateChange: onBreakerStateChange }) },
  });
}
