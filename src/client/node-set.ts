/**
 * The nodes a client talks to, each with its circuit breaker, and the order calls try them.
 */
import type { Clock } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import { type BreakerPermit, type BreakerState, CircuitBreaker } from './breaker.js';
import type { BreakerOptions } from './types.js';

export interface NodeSetComponents {
  readonly clock: Clock;
  readonly random: Random;
}

/** A permit that does nothing: used when breakers are disabled. */
const ALWAYS: BreakerPermit = { success() {}, failure() {}, release() {} };

export class NodeSet {
  private readonly components: NodeSetComponents;
  private readonly breakerInit: BreakerOptions | false;
  private nodes: string[] = [];
  private readonly breakers = new Map<string, CircuitBreaker>();
  private next: number;

  constructor(components: NodeSetComponents, init: { nodes: readonly string[]; breaker: BreakerOptions | false }) {
    this.components = components;
    this.breakerInit = init.breaker;
    this.replace(init.nodes);
    // Clients started together should not all hammer the first node in the list.
    this.next = components.random.int(Math.max(1, this.nodes.length));
  }

  /** The current node origins. */
  list(): string[] {
    return [...this.nodes];
  }

  /** Swaps in a new node list; breakers of nodes that stay are kept. Duplicates are dropped. */
  replace(nodes: readonly string[]): void {
    this.nodes = [...new Set(nodes)];
    for (const n of [...this.breakers.keys()]) if (!this.nodes.includes(n)) this.breakers.delete(n);
    if (this.breakerInit !== false) {
      for (const n of this.nodes) {
        if (!this.breakers.has(n)) this.breakers.set(n, new CircuitBreaker(this.components, this.breakerInit));
      }
    }
  }

  /** The order one call tries nodes in: round-robin start, then the rest of the list. */
  rotation(): string[] {
    const n = this.nodes.length;
    if (n === 0) return [];
    const start = this.next % n;
    this.next = (start + 1) % n;
    return [...this.nodes.slice(start), ...this.nodes.slice(0, start)];
  }

  /** A permit to send to `node`, or undefined while its breaker is open. */
  acquire(node: string): BreakerPermit | undefined {
    const breaker = this.breakers.get(node);
    return breaker ? breaker.tryAcquire() : ALWAYS;
  }

  /** Each node's breaker state (`closed` when breakers are disabled). */
  states(): { node: string; breaker: BreakerState }[] {
    return this.nodes.map((node) => ({ node, breaker: this.breakers.get(node)?.state ?? 'closed' }));
  }
}
