import type { Clock } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { Timers } from '../runtime/timers.js';
import { type BreakerHandle, type BreakerInit, withCircuitBreaker } from './breaker.js';
import { type RetryInit, withRetry } from './retry.js';
import type { Transport } from './transport.js';

export interface ResilientComponents {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly random: Random;
}

export interface ResilientInit {
  readonly retry?: RetryInit;
  readonly breaker?: BreakerInit;
}

/**
 * The production stack: `withRetry(withCircuitBreaker(inner))`.
 *
 * Why the breaker sits inside the retry loop:
 * - It sees every attempt that touches the wire, so its failure count is the peer's real
 *   record. Outside, a whole retried call (up to maxAttempts tries) would count as one
 *   failure, and a dead peer would cost threshold × maxAttempts attempts before it opens.
 * - Once it opens, the attempts left in a running retry loop fail fast with
 *   CircuitOpenError, which withRetry does not retry, so the caller gets its answer
 *   (and can pick another replica or park a hint) instead of waiting out the deadline.
 * - A half-open probe is then exactly one request, not one request plus its retries.
 * The deadline still covers the whole call: withRetry hands each attempt the time left.
 */
export function resilientTransport(
  inner: Transport,
  components: ResilientComponents,
  init: ResilientInit = {},
): { transport: Transport } & BreakerHandle {
  const breaker = withCircuitBreaker(inner, components, init.breaker);
  const transport = withRetry(breaker, components, init.retry);
  return { transport, breakerStates: () => breaker.breakerStates() };
}
