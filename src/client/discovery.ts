/**
 * Optional node discovery: keeps the client's node list equal to the members a node reports
 * as `up` in `GET /v1/cluster` (those the client can reach), refreshed on a timer and soon
 * after a node fails.
 */
import type { Clock } from '../runtime/clock.js';
import type { TimerHandle, Timers } from '../runtime/timers.js';

export interface DiscoveryComponents {
  readonly clock: Clock;
  readonly timers: Timers;
}

export interface DiscoveryInit {
  /** Pause between periodic refreshes. */
  readonly intervalMs: number;
  /** Least time between two refreshes triggered by failures. */
  readonly minGapMs: number;
  /** Fetches the cluster document (through the client's normal failover). */
  readonly fetch: () => Promise<unknown>;
  /** The node list currently in use. */
  readonly current: () => string[];
  /** Installs a new node list. */
  readonly apply: (nodes: string[]) => void;
  /** Whether the client can reach `node` (a node it is not using yet). */
  readonly reachable: (node: string) => Promise<boolean>;
  /** The nodes the client was configured with; the fallback when the cluster is unreachable. */
  readonly seeds: readonly string[];
}

/**
 * The origins of the `up` members of a `/v1/cluster` document. An address without a scheme
 * (`host:port`, as advertised) gets `scheme`; anything unparseable is skipped.
 */
export function nodesFromCluster(doc: unknown, scheme: string): string[] {
  if (typeof doc !== 'object' || doc === null) return [];
  const members = (doc as { members?: unknown }).members;
  if (!Array.isArray(members)) return [];
  const out = new Set<string>();
  for (const m of members) {
    if (typeof m !== 'object' || m === null) continue;
    const { address, status } = m as { address?: unknown; status?: unknown };
    if (status !== 'up' || typeof address !== 'string' || address === '') continue;
    try {
      const u = new URL(address.includes('://') ? address : `${scheme}//${address}`);
      if (u.protocol === 'http:' || u.protocol === 'https:') out.add(u.origin);
    } catch {
      // A member with a malformed address cannot be used; the others still can.
    }
  }
  return [...out].sort();
}

export class Discovery {
  private readonly c: DiscoveryComponents;
  private readonly init: DiscoveryInit;
  private timer: TimerHandle | undefined;
  private inflight: Promise<string[]> | undefined;
  private lastRefresh = Number.NEGATIVE_INFINITY;
  private running = false;

  constructor(components: DiscoveryComponents, init: DiscoveryInit) {
    this.c = components;
    this.init = init;
  }

  /** Refreshes now and then every `intervalMs`. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.refresh().catch(() => undefined);
  }

  /** Cancels the timer and waits for a refresh in flight. Idempotent. */
  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    await this.inflight?.catch(() => undefined);
  }

  /** A node failed: refresh soon, at most once per `minGapMs`. */
  nudge(): void {
    if (!this.running || this.inflight) return;
    if (this.c.clock.monotonic() - this.lastRefresh < this.init.minGapMs) return;
    void this.refresh().catch(() => undefined);
  }

  /** Fetches the member list and installs it; returns the node list now in use. */
  refresh(): Promise<string[]> {
    if (!this.inflight) {
      this.inflight = this.run().finally(() => {
        this.inflight = undefined;
        this.schedule();
      });
    }
    return this.inflight;
  }

  private async run(): Promise<string[]> {
    this.lastRefresh = this.c.clock.monotonic();
    const scheme = new URL(this.init.seeds[0] ?? 'http://x').protocol;
    let found: string[];
    try {
      found = nodesFromCluster(await this.init.fetch(), scheme);
    } catch (err) {
      // The nodes in use are unreachable: add the configured ones back so calls can find a way in.
      const merged = [...new Set([...this.init.current(), ...this.init.seeds])];
      this.init.apply(merged);
      throw err;
    }
    // Members advertise the address their peers use, which the client may not be able to
    // reach (docker-compose's `n1:8081` from the host, a private network, 0.0.0.0). Adopting
    // such a list would swap working nodes for dead ends until the next failed refresh, and
    // again after every good one. So a node joins the list only once it has answered the
    // client (GET /v1/health); nodes already in use stay as long as they are listed as up.
    const inUse = new Set(this.init.current());
    const fresh = found.filter((n) => !inUse.has(n));
    const reached = await Promise.all(fresh.map((n) => this.init.reachable(n)));
    const answered = new Set(fresh.filter((_, i) => reached[i]));
    const next = found.filter((n) => inUse.has(n) || answered.has(n));
    // An empty or unreadable member list, or one of nodes out of reach, says nothing useful:
    // keep what works.
    if (next.length > 0) this.init.apply(next);
    return this.init.current();
  }

  private schedule(): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (!this.running) return;
    this.timer = this.c.timers.setTimeout(() => {
      this.timer = undefined;
      void this.refresh().catch(() => undefined);
    }, this.init.intervalMs);
  }
}
