import type { Clock } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import { type PeerAddress, type SendOptions, type Transport, TransportError } from './transport.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** Called on every transition of one peer's breaker (metrics hook this). */
export type BreakerStateListener = (peer: PeerAddress, state: BreakerState, previous: BreakerState) => void;

export interface BreakerComponents {
  readonly clock: Clock;
  readonly random: Random;
}

export interface BreakerInit {
  /** Consecutive 'unreachable'/'timeout' failures that open the breaker. */
  readonly failureThreshold?: number;
  /** How long an open breaker fails fast before letting one probe through. */
  readonly openMs?: number;
  /** `openMs` is spread by ± this fraction so peers' probes do not line up. */
  readonly openJitter?: number;
  readonly onStateChange?: BreakerStateListener;
}

export const BREAKER_DEFAULTS = {
  failureThreshold: 5,
  openMs: 5_000,
  openJitter: 0.2,
} as const satisfies BreakerInit;

/** Thrown without touching the network while a peer's breaker is open. */
export class CircuitOpenError extends TransportError {
  constructor(peer: PeerAddress) {
    super('unreachable', peer, `circuit open for ${peer}`);
    this.name = 'CircuitOpenError';
  }
}

/** Read access to the breakers, for status pages and metrics. */
export interface BreakerHandle {
  /** Each peer's current state (only peers sent to so far). */
  breakerStates(): Map<PeerAddress, BreakerState>;
}

export interface CircuitBreakerTransport extends Transport, BreakerHandle {}

interface Breaker {
  state: BreakerState;
  /** Consecutive counted failures while closed. */
  failures: number;
  /** While open: when (monotonic) the next probe may go. */
  openUntil: number;
  /** While half-open: the one probe is in flight. */
  probing: boolean;
}

/**
 * One circuit breaker per peer. Closed: sends go through and consecutive 'unreachable' or
 * 'timeout' failures are counted; at `failureThreshold` it opens. Open: sends fail at once
 * with CircuitOpenError (kind 'unreachable': nothing was sent). After a jittered `openMs` it
 * is half-open: one probe goes through while other sends still fail fast; the probe's success
 * closes it, its failure opens it again.
 *
 * Any answer from the peer, even an error status, proves it reachable and counts as success;
 * a send the caller aborted counts as nothing. Time is read from the Clock when a send arrives
 * (or states are read), so the breaker owns no timers.
 */
export function withCircuitBreaker(
  inner: Transport,
  components: BreakerComponents,
  init: BreakerInit = {},
): CircuitBreakerTransport {
  const { clock, random } = components;
  const failureThreshold = Math.max(1, init.failureThreshold ?? BREAKER_DEFAULTS.failureThreshold);
  const openMs = init.openMs ?? BREAKER_DEFAULTS.openMs;
  const openJitter = init.openJitter ?? BREAKER_DEFAULTS.openJitter;
  const onStateChange = init.onStateChange;
  const breakers = new Map<PeerAddress, Breaker>();

  const move = (peer: PeerAddress, b: Breaker, state: BreakerState): void => {
    const previous = b.state;
    if (previous === state) return;
    b.state = state;
    b.failures = 0;
    b.probing = false;
    if (state === 'open') b.openUntil = clock.monotonic() + openMs * (1 + openJitter * (2 * random.next() - 1));
    try {
      onStateChange?.(peer, state, previous);
    } catch {
      // A broken metrics hook must not turn a good call into a failed one.
    }
  };

  /** Let time do its part: an open breaker whose wait is over becomes half-open. */
  const current = (peer: PeerAddress): Breaker => {
    let b = breakers.get(peer);
    if (!b) {
      b = { state: 'closed', failures: 0, openUntil: 0, probing: false };
      breakers.set(peer, b);
    }
    if (b.state === 'open' && clock.monotonic() >= b.openUntil) move(peer, b, 'half-open');
    return b;
  };

  async function send(to: PeerAddress, route: string, body: Uint8Array, opts: SendOptions): Promise<Uint8Array> {
    const b = current(to);
    if (b.state === 'open' || (b.state === 'half-open' && b.probing)) throw new CircuitOpenError(to);
    const probe = b.state === 'half-open';
    if (probe) b.probing = true;
    try {
      const reply = await inner.send(to, route, body, opts);
      succeeded(to, b, probe);
      return reply;
    } catch (err) {
      // Anything that is not a TransportError left the outcome unknown: count it as a timeout.
      const kind = err instanceof TransportError ? err.kind : 'timeout';
      if (kind === 'unreachable' || kind === 'timeout') failed(to, b, probe);
      else if (kind === 'remote') succeeded(to, b, probe);
      else if (probe && b.state === 'half-open') b.probing = false; // aborted: let the next send probe
      throw err;
    }
  }

  // A result counts only against the state the call was admitted under: a slow call let in
  // while closed must not close a breaker that opened meanwhile, nor re-open a half-open one.
  function succeeded(peer: PeerAddress, b: Breaker, probe: boolean): void {
    if (probe && b.state === 'half-open') move(peer, b, 'closed');
    else if (!probe && b.state === 'closed') b.failures = 0;
  }

  function failed(peer: PeerAddress, b: Breaker, probe: boolean): void {
    if (probe && b.state === 'half-open') move(peer, b, 'open');
    else if (!probe && b.state === 'closed' && ++b.failures >= failureThreshold) move(peer, b, 'open');
  }

  return {
    send,
    close: () => inner.close(),
    breakerStates() {
      const out = new Map<PeerAddress, BreakerState>();
      for (const peer of breakers.keys()) out.set(peer, current(peer).state);
      return out;
    },
  };
}
