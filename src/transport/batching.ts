/**
 * Per-peer batching as a Transport wrapper: idempotent sends of chosen routes (the replica
 * reads and writes of the request path) to one peer are packed into one `batch` request, and
 * the peer answers each item separately. The route that serves the envelope is built by
 * {@link withBatchRoute} from the node's own handlers.
 *
 * Why: a replica write or read is ~100 bytes of work wrapped in an HTTP exchange that costs far
 * more CPU on both ends (parsing, routing, hooks, a syscall per direction). Under load one
 * exchange now carries many items. Batches form without waiting: a send goes out at once
 * while fewer than `maxInFlight` batches to that peer are in flight; only sends that arrive
 * while the link is busy wait, and leave together when a batch returns. So an idle cluster
 * pays no added latency, and a busy one pays one HTTP exchange per batch.
 *
 * Every item keeps the semantics of its own send: its own deadline (the caller's timeoutMs,
 * queueing included), its own reply or remote error (status and body as the peer's error
 * mapping produced them), and a batch that fails (timeout, unreachable, breaker open,
 * transport closed) fails each item still waiting on it. The queue per peer is bounded by
 * items and bytes; a send beyond it fails at once as 'unreachable' (it was never sent), so
 * callers fall back (the coordinator parks a hint) rather than queue without limit.
 */
import { RingkvError } from '../errors.js';
import type { Clock } from '../runtime/clock.js';
import type { TimerHandle, Timers } from '../runtime/timers.js';
import { Reader, Writer } from '../wire.js';
import { deadlineError, MAX_TIMER_MS } from './deadline.js';
import {
  type InternalHandler,
  type InternalHandlers,
  type PeerAddress,
  type SendOptions,
  type Transport,
  TransportError,
} from './transport.js';

/** The route that carries a batch. */
export const BATCH_ROUTE = 'batch';

export interface BatchingComponents {
  readonly clock: Clock;
  readonly timers: Timers;
  /**
   * Runs a flush a little later, so the sends made meanwhile leave in one batch. Default:
   * a microtask (the sends of one event). Real nodes pass setImmediate, the end of the event
   * loop's I/O round: then the sends of every request read in that round share a batch.
   */
  readonly defer?: (flush: () => void) => void;
  /** Called with the number of items in each batch as it goes to `inner` (the node's metrics). */
  readonly onBatch?: (items: number) => void;
}

export interface BatchingInit {
  /** Routes whose idempotent sends may be batched; everything else passes straight through. */
  readonly routes: readonly string[];
  /** Items per batch. */
  readonly maxItems?: number;
  /** Body bytes per batch; a larger single body is sent on its own, unbatched. */
  readonly maxBytes?: number;
  /** Batches in flight per peer; more sends wait and leave together. */
  readonly maxInFlight?: number;
  /** Items waiting per peer (not yet sent); beyond it sends fail at once. */
  readonly maxQueued?: number;
  /** Body bytes waiting per peer. */
  readonly maxQueuedBytes?: number;
}

export const BATCHING_DEFAULTS = {
  maxItems: 256,
  maxBytes: 1024 * 1024,
  maxInFlight: 2,
  maxQueued: 8192,
  maxQueuedBytes: 32 * 1024 * 1024,
} as const;

interface Item {
  readonly route: string;
  readonly body: Uint8Array;
  /** Clock.monotonic() at which the caller's budget runs out. */
  readonly deadline: number;
  readonly resolve: (reply: Uint8Array) => void;
  readonly reject: (err: unknown) => void;
  timer: TimerHandle | undefined;
  /** Resolved, rejected or timed out: whatever happens to its batch later is ignored. */
  settled: boolean;
}

interface Peer {
  readonly address: PeerAddress;
  /** Waiting items, oldest first; settled ones are skipped (and dropped) when a batch forms. */
  queue: Item[];
  queuedBytes: number;
  inFlight: number;
  /** A flush is scheduled (see `defer`). */
  flushing: boolean;
  /** The peer does not serve the batch route (an older version): send items one by one. */
  legacy: boolean;
}

/**
 * Wrap `inner` (the resilient HTTP transport) so sends of `init.routes` are batched per peer.
 * The batch itself is an idempotent send through `inner`, so it is retried and counted by the
 * circuit breaker like any other call.
 */
export function withBatching(inner: Transport, components: BatchingComponents, init: BatchingInit): Transport {
  const { clock, timers } = components;
  const defer = components.defer ?? queueMicrotask;
  const routes = new Set(init.routes);
  const maxItems = Math.max(1, init.maxItems ?? BATCHING_DEFAULTS.maxItems);
  const maxBytes = init.maxBytes ?? BATCHING_DEFAULTS.maxBytes;
  const maxInFlight = Math.max(1, init.maxInFlight ?? BATCHING_DEFAULTS.maxInFlight);
  const maxQueued = init.maxQueued ?? BATCHING_DEFAULTS.maxQueued;
  const maxQueuedBytes = init.maxQueuedBytes ?? BATCHING_DEFAULTS.maxQueuedBytes;
  const peers = new Map<PeerAddress, Peer>();
  let closed = false;

  function settle(item: Item): boolean {
    if (item.settled) return false;
    item.settled = true;
    item.timer?.cancel();
    return true;
  }

  function send(to: PeerAddress, route: string, body: Uint8Array, opts: SendOptions): Promise<Uint8Array> {
    if (!opts.idempotent || opts.signal !== undefined || !routes.has(route) || body.length > maxBytes) {
      return inner.send(to, route, body, opts);
    }
    if (closed) return Promise.reject(new TransportError('unreachable', to, 'transport closed'));
    let peer = peers.get(to);
    if (peer === undefined) {
      peer = { address: to, queue: [], queuedBytes: 0, inFlight: 0, flushing: false, legacy: false };
      peers.set(to, peer);
    }
    if (peer.legacy) return inner.send(to, route, body, opts);
    if (peer.queue.length >= maxQueued || peer.queuedBytes + body.length > maxQueuedBytes) {
      return Promise.reject(new TransportError('unreachable', to, `send queue to ${to} is full`));
    }
    if (!(opts.timeoutMs > 0)) return Promise.reject(deadlineError('timeout', to, opts.timeoutMs));
    const p = peer;
    return new Promise<Uint8Array>((resolve, reject) => {
      const item: Item = {
        route,
        body,
        deadline: clock.monotonic() + opts.timeoutMs,
        resolve,
        reject,
        timer: undefined,
        settled: false,
      };
      // The caller's deadline covers queueing too. A timed-out item still queued is skipped
      // when the next batch forms; one already sent just has its answer ignored.
      item.timer = timers.setTimeout(
        () => {
          if (settle(item)) reject(deadlineError('timeout', to, opts.timeoutMs));
        },
        // Node clamps longer delays to 1 ms; a longer budget is treated as this one.
        Math.min(opts.timeoutMs, MAX_TIMER_MS),
      );
      p.queue.push(item);
      p.queuedBytes += body.length;
      schedule(p);
    });
  }

  /**
   * Flush a little later (`defer`) rather than now: the sends one event makes (a burst of
   * requests read from one socket chunk, a coordinator writing to all replicas) or, with
   * setImmediate, one I/O round makes, leave in one batch.
   */
  function schedule(peer: Peer): void {
    if (peer.flushing || peer.inFlight >= maxInFlight) return;
    peer.flushing = true;
    defer(() => {
      peer.flushing = false;
      pump(peer);
    });
  }

  function pump(peer: Peer): void {
    while (peer.inFlight < maxInFlight && peer.queue.length > 0) {
      const items = take(peer);
      if (items.length === 0) return;
      peer.inFlight++;
      void sendBatch(peer, items).finally(() => {
        peer.inFlight--;
        if (peer.queue.length > 0) schedule(peer);
      });
    }
  }

  /** Up to maxItems live items, at most maxBytes of bodies (always at least one item). */
  function take(peer: Peer): Item[] {
    const out: Item[] = [];
    let bytes = 0;
    let i = 0;
    const q = peer.queue;
    for (; i < q.length && out.length < maxItems; i++) {
      const item = q[i] as Item;
      if (item.settled) {
        peer.queuedBytes -= item.body.length;
        continue;
      }
      if (out.length > 0 && bytes + item.body.length > maxBytes) break;
      bytes += item.body.length;
      peer.queuedBytes -= item.body.length;
      out.push(item);
    }
    peer.queue = i === q.length ? [] : q.slice(i);
    return out;
  }

  async function sendBatch(peer: Peer, items: Item[]): Promise<void> {
    let latest = 0;
    for (const item of items) if (item.deadline > latest) latest = item.deadline;
    const timeoutMs = latest - clock.monotonic();
    let replies: BatchReply[];
    try {
      if (!(timeoutMs > 0)) throw deadlineError('timeout', peer.address, 0);
      components.onBatch?.(items.length);
      const reply = await inner.send(peer.address, BATCH_ROUTE, encodeBatch(items), { timeoutMs, idempotent: true });
      replies = decodeBatchReply(reply, items.length);
    } catch (err) {
      if (err instanceof TransportError && err.kind === 'remote' && err.status === 404 && isUnknownRoute(err)) {
        // A peer from before batching: fall back to one send per item, for good.
        peer.legacy = true;
        for (const item of items) resend(peer, item);
        return;
      }
      // A reply we cannot decode leaves every item's outcome unknown, which is what 'timeout' says.
      const error =
        err instanceof TransportError
          ? err
          : new TransportError('timeout', peer.address, `bad batch reply from ${peer.address}, outcome unknown`, {
              cause: err,
            });
      for (const item of items) if (settle(item)) item.reject(error);
      return;
    }
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Item;
      const r = replies[i] as BatchReply;
      if (!settle(item)) continue;
      if (r.status === 200) item.resolve(r.body);
      else item.reject(remoteItemError(peer.address, item.route, r));
    }
  }

  function resend(peer: Peer, item: Item): void {
    const left = item.deadline - clock.monotonic();
    inner.send(peer.address, item.route, item.body, { timeoutMs: left, idempotent: true }).then(
      (reply) => {
        if (settle(item)) item.resolve(reply);
      },
      (err: unknown) => {
        if (settle(item)) item.reject(err);
      },
    );
  }

  async function close(): Promise<void> {
    if (!closed) {
      closed = true;
      for (const peer of peers.values()) {
        for (const item of peer.queue) {
          if (settle(item)) item.reject(new TransportError('aborted', peer.address, `request to ${peer.address} aborted: transport closed`));
        }
        peer.queue = [];
        peer.queuedBytes = 0;
      }
    }
    // Batches in flight end through inner.close() (their items fail as 'aborted').
    await inner.close();
  }

  return { send, close };
}

// ---------------------------------------------------------------------------------------------
// The envelope. Request: count, then (route, body) per item. Reply: count, then (status, body)
// per item, in request order; status 200 is a reply, anything else the JSON error body that
// the peer's error mapping gives a single request (same codes, same statuses).

interface BatchReply {
  readonly status: number;
  readonly body: Uint8Array;
}

function encodeBatch(items: readonly Item[]): Uint8Array {
  let size = 8;
  for (const item of items) size += item.route.length + item.body.length + 12;
  const w = new Writer(size).uint(items.length);
  for (const item of items) w.str(item.route).bytes(item.body);
  return w.finish();
}

function decodeBatchReply(b: Uint8Array, expected: number): BatchReply[] {
  const r = new Reader(b);
  const n = r.uint();
  if (n !== expected) throw new RingkvError('BAD_REQUEST', `batch reply has ${n} items, expected ${expected}`);
  const out: BatchReply[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = { status: r.uint(), body: r.bytes() };
  // Extra bytes mean the lengths or the count were damaged: no item's answer can be trusted.
  if (!r.done()) throw new RingkvError('BAD_REQUEST', 'trailing bytes after batch reply');
  return out;
}

/** True when a peer answered that it has no such internal route (it runs an older ringkv). */
export function isUnknownRouteError(err: unknown): boolean {
  return err instanceof TransportError && err.kind === 'remote' && err.status === 404 && isUnknownRoute(err);
}

function isUnknownRoute(err: TransportError): boolean {
  if (err.body === undefined) return false;
  try {
    const parsed = JSON.parse(new TextDecoder().decode(err.body)) as { error?: { message?: unknown } };
    return typeof parsed.error?.message === 'string' && parsed.error.message.includes('internal route');
  } catch {
    return false;
  }
}

function remoteItemError(to: PeerAddress, route: string, r: BatchReply): TransportError {
  let detail = '';
  try {
    const parsed = JSON.parse(new TextDecoder().decode(r.body)) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'string') detail = `: ${parsed.error.code}`;
    if (typeof parsed.error?.message === 'string') detail += ` ${parsed.error.message}`;
  } catch {
    // not a ringkv error body; the status will do
  }
  return new TransportError('remote', to, `${to} answered ${r.status} to ${route}${detail}`, {
    status: r.status,
    body: r.body,
  });
}

const enc = new TextEncoder();

/**
 * `handlers` plus the batch route serving them: each item runs its route's handler (all
 * items concurrently, as separate requests would), and a failing item becomes its own
 * error status and body while the others succeed. `onInternalError` sees errors that are not
 * RingkvErrors (bugs), which are answered as a bare 500 INTERNAL like a single request.
 */
export function withBatchRoute(
  handlers: InternalHandlers,
  onInternalError?: (err: unknown, route: string) => void,
): InternalHandlers {
  if (handlers.has(BATCH_ROUTE)) return handlers;
  const errorReply = (err: RingkvError): BatchReply => ({ status: err.status, body: enc.encode(JSON.stringify(err.toJSON())) });
  const failed = (err: unknown, route: string): BatchReply => {
    if (err instanceof RingkvError) return errorReply(err);
    onInternalError?.(err, route);
    return errorReply(new RingkvError('INTERNAL', 'internal error'));
  };
  const ok = (reply: Uint8Array): BatchReply => ({ status: 200, body: reply });
  // Not async: one per item, and `then` costs less than an async frame around an await.
  const runOne = (route: string, body: Uint8Array, from: PeerAddress | undefined): Promise<BatchReply> => {
    const handler = route === BATCH_ROUTE ? undefined : handlers.get(route);
    if (!handler) return Promise.resolve(errorReply(new RingkvError('NOT_FOUND', `unknown internal route ${JSON.stringify(route)}`)));
    try {
      return handler(body, from).then(ok, (err: unknown) => failed(err, route));
    } catch (err) {
      return Promise.resolve(failed(err, route));
    }
  };
  const batch: InternalHandler = async (body, from) => {
    const r = new Reader(body);
    const n = r.uint();
    if (n > 65_536) throw new RingkvError('BAD_REQUEST', 'too many items in batch');
    // Decode the whole envelope before running anything: a malformed batch runs nothing.
    const itemRoutes: string[] = new Array(n);
    const bodies: Uint8Array[] = new Array(n);
    for (let i = 0; i < n; i++) {
      itemRoutes[i] = r.str();
      bodies[i] = r.bytes();
    }
    if (!r.done()) throw new RingkvError('BAD_REQUEST', 'trailing bytes after batch');
    const runs: Promise<BatchReply>[] = new Array(n);
    for (let i = 0; i < n; i++) runs[i] = runOne(itemRoutes[i] as string, bodies[i] as Uint8Array, from);
    const replies = await Promise.all(runs);
    let size = 8;
    for (const x of replies) size += x.body.length + 8;
    const w = new Writer(size).uint(n);
    for (const x of replies) w.uint(x.status).bytes(x.body);
    return w.finish();
  };
  const out = new Map(handlers);
  out.set(BATCH_ROUTE, batch);
  return out;
}
