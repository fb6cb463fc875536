/**
 * The node-to-node seam. A Transport sends one request (a route name and a byte body) to a
 * peer and returns the peer's byte reply. HTTP (undici) in production, in-memory for
 * simulations; both pass test/contract/transport.contract.ts.
 *
 * On the receiving side every route is served by an InternalHandler; the HTTP server exposes
 * them as `POST /internal/<route>` behind the cluster secret, the in-memory network calls them
 * directly.
 */

/** A peer's `host:port` (its --advertise address). */
export type PeerAddress = string;

export interface SendOptions {
  /** Give up after this many ms (the whole call, retries included). Required: no unbounded calls. */
  readonly timeoutMs: number;
  /** Only idempotent calls may be retried by the transport. */
  readonly idempotent?: boolean;
  readonly signal?: AbortSignal;
}

export interface Transport {
  send(to: PeerAddress, route: string, body: Uint8Array, opts: SendOptions): Promise<Uint8Array>;
  /** Idempotent; closes pools and clears timers. */
  close(): Promise<void>;
}

/** Serves one internal route. Throwing a RingkvError maps to its status on the wire. */
export type InternalHandler = (body: Uint8Array, from: PeerAddress | undefined) => Promise<Uint8Array>;

/** Route name -> handler; built by node.ts, served by the HTTP internal plugin and by the in-memory network. */
export type InternalHandlers = ReadonlyMap<string, InternalHandler>;

/**
 * Why a send failed. `unreachable`: the request certainly did not reach the peer's handler
 * (connect refused, breaker open). `timeout`: unknown outcome. `remote`: the peer answered
 * with an error (status and body attached).
 */
export type TransportErrorKind = 'unreachable' | 'timeout' | 'remote' | 'aborted';

export class TransportError extends Error {
  readonly kind: TransportErrorKind;
  readonly peer: PeerAddress;
  readonly status: number | undefined;
  readonly body: Uint8Array | undefined;

  constructor(
    kind: TransportErrorKind,
    peer: PeerAddress,
    message: string,
    extra?: { status?: number; body?: Uint8Array; cause?: unknown },
  ) {
    super(message, extra?.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'TransportError';
    this.kind = kind;
    this.peer = peer;
    this.status = extra?.status;
    this.body = extra?.body;
  }
}

/**
 * Bytes of stored copies one node-to-node message carries at most where a sender packs many
 * (hint batches, pull replies, stray hand-overs, anti-entropy repairs); a message always
 * carries at least one copy, whatever its size. Far below the 64 MiB a peer accepts per
 * request (INTERNAL_BODY_LIMIT): 256 copies of values near the largest a client may write
 * would be refused there on every retry, and a message built whole in memory, or crossing a
 * slow link within a timeout, stays cheap.
 */
export const MAX_MESSAGE_COPY_BYTES = 8 * 1024 * 1024;
