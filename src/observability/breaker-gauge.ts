/**
 * `ringkv_circuit_breaker_state`, one series per peer address the node has called. A member
 * that is removed (or leaves) keeps no series: the last value its breaker had, often "open"
 * for a node that died, would otherwise stay on every dashboard and alert for good. `retain`
 * drops the series of every address that is no longer a member's; a later call to such an
 * address (a straggling request) starts its series again.
 */
import type { BreakerState } from '../transport/breaker.js';
import type { Metrics } from './metrics.js';

const VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

export class BreakerGauge {
  readonly #peers = new Set<string>();

  constructor(private readonly metrics: Metrics) {}

  set(peer: string, state: BreakerState): void {
    this.#peers.add(peer);
    this.metrics.breakerState.set({ peer }, VALUE[state]);
  }

  /** Keep the series of `addresses` only (every current member's). */
  retain(addresses: ReadonlySet<string>): void {
    for (const peer of this.#peers) {
      if (addresses.has(peer)) continue;
      this.#peers.delete(peer);
      this.metrics.breakerState.remove({ peer });
    }
  }
}
