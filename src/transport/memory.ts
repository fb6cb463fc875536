import { RingkvError } from '../errors.js';
import type { Timers } from '../runtime/timers.js';
import { withBatchRoute } from './batching.js';
import { type Deadline, deadlineError, raceSignal, startDeadline } from './deadline.js';
import {
  type InternalHandlers,
  type PeerAddress,
  type SendOptions,
  type Transport,
  TransportError,
} from './transport.js';

/**
 * An in-process network for simulations: nodes register their handlers under an address,
 * and links can be cut one way, both ways, or for a whole node, then healed. A cut link
 * behaves like iptables DROP: the request never arrives and the sender times out.
 */
export class MemoryNetwork {
  private readonly nodes = new Map<PeerAddress, InternalHandlers>();
  /** Directed cuts "from->to". */
  private readonly cuts = new Set<string>();
  private readonly isolated = new Set<PeerAddress>();
  /** Requests delivered so far (for tests that count traffic). */
  delivered = 0;

  constructor(private readonly timers: Timers) {}

  register(address: PeerAddress, handlers: InternalHandlers): void {
    // Serve the batch envelope too, so withBatching works over this network as over HTTP.
    this.nodes.set(address, withBatchRoute(handlers));
  }

  unregister(address: PeerAddress): void {
    this.nodes.delete(address);
  }

  /** Drop traffic from `a` to `b` (and back, unless oneWay). */
  cut(a: PeerAddress, b: PeerAddress, oneWay = false): void {
    this.cuts.add(`${a}->${b}`);
    if (!oneWay) this.cuts.add(`${b}->${a}`);
  }

  /** Split the network into groups; traffic between different groups is dropped. */
  partition(groups: readonly (readonly PeerAddress[])[]): void {
    for (const g of groups)
      for (const h of groups) if (g !== h) for (const a of g) for (const b of h) this.cuts.add(`${a}->${b}`);
  }

  isolate(a: PeerAddress): void {
    this.isolated.add(a);
  }

  heal(): void {
    this.cuts.clear();
    this.isolated.clear();
  }

  reachable(from: PeerAddress, to: PeerAddress): boolean {
    if (from === to) return true;
    if (this.isolated.has(from) || this.isolated.has(to)) return false;
    return !this.cuts.has(`${from}->${to}`);
  }

  /** A Transport that sends as `from`. */
  transport(from: PeerAddress): Transport {
    return new MemoryTransport(this, from, this.timers);
  }

  /**
   * @internal Runs the request as the wire would. `opts.signal` is the sender's deadline: a
   * dropped request or reply waits on it, so the sender sees the same 'timeout' as over TCP.
   */
  async deliver(from: PeerAddress, to: PeerAddress, route: string, body: Uint8Array, opts: SendOptions): Promise<Uint8Array> {
    const handlers = this.nodes.get(to);
    if (!handlers) throw new TransportError('unreachable', to, `no node listening at ${to}`);
    if (!this.reachable(from, to)) {
      // Dropped silently: the sender learns nothing until its timeout fires.
      await this.timers.sleep(opts.timeoutMs, opts.signal).catch(() => undefined);
      throw new TransportError('timeout', to, `request to ${to} timed out after ${opts.timeoutMs} ms`);
    }
    const handler = handlers.get(route);
    if (!handler) {
      throw remoteError(to, new RingkvError('NOT_FOUND', `unknown internal route ${JSON.stringify(route)}`));
    }
    this.delivered++;
    // Copy the body so sender and receiver never share a buffer, as over a real wire.
    // `then` so a handler that throws synchronously is mapped like one that rejects.
    const reply = await Promise.resolve()
      .then(() => handler(Uint8Array.from(body), from))
      .catch((err: unknown) => {
        // Same mapping and body as the HTTP internal plugin, so callers cannot tell them apart.
        throw remoteError(to, err instanceof RingkvError ? err : new RingkvError('INTERNAL', 'internal error'), err);
      });
    // A reply crossing a link cut after the request arrived is lost too: the sender waits.
    if (!this.reachable(to, from)) {
      await this.timers.sleep(opts.timeoutMs, opts.signal).catch(() => undefined);
      throw new TransportError('timeout', to, `reply from ${to} lost`);
    }
    return Uint8Array.from(reply);
  }
}

function remoteError(to: PeerAddress, err: RingkvError, cause?: unknown): TransportError {
  const bytes = new TextEncoder().encode(JSON.stringify(err.toJSON()));
  return new TransportError('remote', to, err.message, { status: err.status, body: bytes, cause: cause ?? err });
}

class MemoryTransport implements Transport {
  private closed = false;
  /** Deadlines of sends in flight: close() ends them (as 'aborted'), clearing their timers. */
  private readonly inflight = new Set<Deadline>();

  constructor(
    private readonly net: MemoryNetwork,
    private readonly from: PeerAddress,
    private readonly timers: Timers,
  ) {}

  async send(to: PeerAddress, route: string, body: Uint8Array, opts: SendOptions): Promise<Uint8Array> {
    if (this.closed) throw new TransportError('unreachable', to, 'transport closed');
    // The deadline bounds the whole call, including a handler that never answers.
    const deadline = startDeadline(this.timers, opts.timeoutMs, opts.signal);
    this.inflight.add(deadline);
    try {
      // Yield once so a send never completes synchronously, as with real I/O.
      await this.timers.sleep(0, deadline.signal);
      return await raceSignal(
        this.net.deliver(this.from, to, route, body, { ...opts, signal: deadline.signal }),
        deadline.signal,
      );
    } catch (err) {
      if (deadline.cause !== undefined) throw deadlineError(deadline.cause, to, opts.timeoutMs);
      throw err;
    } finally {
      deadline.dispose();
      this.inflight.delete(deadline);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const deadline of this.inflight) deadline.end('closed');
  }
}
