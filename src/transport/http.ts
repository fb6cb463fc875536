import { buildConnector, Pool } from 'undici';
import type { Clock } from '../runtime/clock.js';
import type { Timers } from '../runtime/timers.js';
import { type Deadline, type DeadlineCause, deadlineError, startDeadline } from './deadline.js';
import { type PeerAddress, type SendOptions, type Transport, TransportError } from './transport.js';

/** The few logger methods the transport uses; a pino Logger fits. */
export interface TransportLog {
  debug(obj: object, msg?: string): void;
}

export interface HttpTransportComponents {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log?: TransportLog;
}

export interface HttpTransportInit {
  /** The cluster secret, sent as `Authorization: Bearer <secret>`. */
  readonly secret: string;
  /** This node's advertised `host:port`, sent as `x-ringkv-from` so handlers know the caller. */
  readonly advertise?: PeerAddress;
  /** Bind outgoing sockets to this local IP (lets fault tests cut links per host with iptables). */
  readonly localAddress?: string;
  /** Keep-alive connections per peer. */
  readonly connectionsPerPeer?: number;
  /** How long an idle keep-alive connection is kept (the server's Keep-Alive hint may lower it). */
  readonly keepAliveTimeoutMs?: number;
  /** TCP connect timeout; the call's own deadline still bounds the whole send. */
  readonly connectTimeoutMs?: number;
}

export const HTTP_TRANSPORT_DEFAULTS = {
  connectionsPerPeer: 8,
  keepAliveTimeoutMs: 4_000,
  connectTimeoutMs: 5_000,
} as const;

/** Errors that can only happen before a single request byte reached the peer. */
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Larger delays overflow Node's timers; our own deadline still holds the real budget. */
const MAX_UNDICI_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Node-to-node calls over HTTP/1.1 with undici: one keep-alive Pool per peer, created on the
 * first send and destroyed by close(). Every send is `POST /internal/<route>` with an
 * octet-stream body and the cluster secret. Failures become TransportErrors whose `kind`
 * tells the caller what it may assume about the peer (see TransportErrorKind).
 */
export class HttpTransport implements Transport {
  private readonly timers: Timers;
  private readonly clock: Clock;
  private readonly log: TransportLog | undefined;
  private readonly pools = new Map<PeerAddress, Pool>();
  private readonly headers: Record<string, string>;
  private readonly poolOptions: Pool.Options;
  /** Errors raised while connecting: the request cannot have been written. */
  private readonly connectErrors = new WeakSet<object>();
  /** Deadlines of sends in flight, ended by close(). */
  private readonly inflight = new Set<Deadline>();
  private closed: Promise<void> | undefined;

  constructor(components: HttpTransportComponents, init: HttpTransportInit) {
    this.clock = components.clock;
    this.timers = components.timers;
    this.log = components.log;
    this.headers = {
      'content-type': 'application/octet-stream',
      authorization: `Bearer ${init.secret}`,
      ...(init.advertise === undefined ? {} : { 'x-ringkv-from': init.advertise }),
    };
    const base = buildConnector({ timeout: init.connectTimeoutMs ?? HTTP_TRANSPORT_DEFAULTS.connectTimeoutMs });
    // Wrap the connector to tag its errors: undici hands the very same error object to every
    // queued request, so `classify` can tell "never connected" from "connection died mid-call"
    // even for codes like ECONNRESET that can mean either.
    const connect: buildConnector.connector = (options, callback) => {
      base(options, (...args) => {
        if (args[0]) this.connectErrors.add(args[0]);
        callback(...args);
      });
    };
    this.poolOptions = {
      connections: init.connectionsPerPeer ?? HTTP_TRANSPORT_DEFAULTS.connectionsPerPeer,
      keepAliveTimeout: init.keepAliveTimeoutMs ?? HTTP_TRANSPORT_DEFAULTS.keepAliveTimeoutMs,
      connect,
      // Must be the Pool option, not `connect: { localAddress }`: undici passes its own
      // (null) localAddress to the connector after the connect options, overriding them.
      ...(init.localAddress === undefined ? {} : { localAddress: init.localAddress }),
    };
  }

  async send(to: PeerAddress, route: string, body: Uint8Array, opts: SendOptions): Promise<Uint8Array> {
    if (this.closed) throw new TransportError('unreachable', to, 'transport closed');
    const started = this.clock.monotonic();
    const deadline = startDeadline(this.timers, opts.timeoutMs, opts.signal);
    this.inflight.add(deadline);
    try {
      if (deadline.cause !== undefined) throw deadlineError(deadline.cause, to, opts.timeoutMs);
      const res = await this.pool(to).request({
        method: 'POST',
        path: `/internal/${encodeURIComponent(route)}`,
        headers: this.headers,
        body,
        signal: deadline.signal,
        // undici's own timers are a second line: they also end a call whose socket stalls.
        headersTimeout: Math.min(opts.timeoutMs, MAX_UNDICI_TIMEOUT_MS),
        bodyTimeout: Math.min(opts.timeoutMs, MAX_UNDICI_TIMEOUT_MS),
      });
      const bytes = await res.body.bytes();
      if (res.statusCode >= 200 && res.statusCode < 300) return bytes;
      throw new TransportError('remote', to, remoteMessage(to, route, res.statusCode, bytes), {
        status: res.statusCode,
        body: bytes,
      });
    } catch (err) {
      const error = this.classify(err, to, opts, deadline.cause);
      this.log?.debug(
        { peer: to, route, kind: error.kind, status: error.status, ms: this.clock.monotonic() - started },
        'internal call failed',
      );
      throw error;
    } finally {
      deadline.dispose();
      this.inflight.delete(deadline);
    }
  }

  /** Destroys every pool; in-flight sends fail with kind 'aborted'. Idempotent. */
  close(): Promise<void> {
    if (!this.closed) {
      for (const deadline of this.inflight) deadline.end('closed');
      const pools = [...this.pools.values()];
      this.pools.clear();
      this.closed = Promise.all(pools.map((p) => p.destroy())).then(() => undefined);
    }
    return this.closed;
  }

  private pool(to: PeerAddress): Pool {
    let pool = this.pools.get(to);
    if (!pool) {
      try {
        pool = new Pool(`http://${to}`, this.poolOptions);
      } catch (err) {
        throw new TransportError('unreachable', to, `bad peer address ${JSON.stringify(to)}`, { cause: err });
      }
      this.pools.set(to, pool);
    }
    return pool;
  }

  private classify(err: unknown, to: PeerAddress, opts: SendOptions, cause: DeadlineCause | undefined): TransportError {
    // Our own deadline first: whatever undici threw while being aborted is a consequence.
    if (cause !== undefined) return deadlineError(cause, to, opts.timeoutMs, err);
    if (err instanceof TransportError) return err;
    const code = errorCode(err);
    if ((typeof err === 'object' && err !== null && this.connectErrors.has(err)) || (code && CONNECT_CODES.has(code))) {
      return new TransportError('unreachable', to, `cannot connect to ${to}: ${describe(err)}`, { cause: err });
    }
    if (code && TIMEOUT_CODES.has(code)) {
      return new TransportError('timeout', to, `request to ${to} timed out after ${opts.timeoutMs} ms`, { cause: err });
    }
    // The connection failed after the request may have been written (reset, peer crashed,
    // bad response): the outcome is unknown, which is what 'timeout' means.
    return new TransportError('timeout', to, `request to ${to} failed, outcome unknown: ${describe(err)}`, {
      cause: err,
    });
  }
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // Happy-eyeballs connects fail with an AggregateError of per-address errors.
  const inner = (err as { errors?: unknown }).errors;
  return Array.isArray(inner) ? errorCode(inner[0]) : undefined;
}

function describe(err: unknown): string {
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return code && !message.includes(code) ? `${code} ${message}` : message;
}

/** A short message from a remote error reply; the full body stays on the error. */
function remoteMessage(to: PeerAddress, route: string, status: number, body: Uint8Array): string {
  let detail = '';
  try {
    const parsed = JSON.parse(new TextDecoder().decode(body.subarray(0, 4096))) as {
      error?: { code?: unknown; message?: unknown };
    };
    if (typeof parsed.error?.code === 'string') detail = `: ${parsed.error.code}`;
    if (typeof parsed.error?.message === 'string') detail += ` ${parsed.error.message}`;
  } catch {
    // Not a ringkv JSON error (a proxy's page, a truncated body): status alone will do.
  }
  return `${to} answered ${status} to ${route}${detail}`;
}
