import { buildConnector, type Dispatcher, Pool } from 'undici';
import type { Clock } from '../runtime/clock.js';
import type { TimerHandle, Timers } from '../runtime/timers.js';
import { type DeadlineCause, deadlineError, MAX_TIMER_MS } from './deadline.js';
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
  /**
   * Bytes of each call, by route: the request body when it is handed to undici (`sent`), the
   * reply body when it has arrived (`received`), whatever the status. The node's metrics hook
   * this.
   */
  readonly onTraffic?: (route: string, direction: 'sent' | 'received', bytes: number) => void;
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

/**
 * Node-to-node calls over HTTP/1.1 with undici: one keep-alive Pool per peer, created on the
 * first send and destroyed by close(). Every send is `POST /internal/<route>` with an
 * octet-stream body and the cluster secret. Failures become TransportErrors whose `kind`
 * tells the caller what it may assume about the peer (see TransportErrorKind).
 */
export class HttpTransport implements Transport {
  private readonly pools = new Map<PeerAddress, Pool>();
  private readonly poolOptions: Pool.Options;
  /** Errors raised while connecting: the request cannot have been written. */
  private readonly connectErrors = new WeakSet<object>();
  /** Sends in flight (each HttpCall adds and removes itself), ended by close(). */
  private readonly inflight = new Set<HttpCall>();
  /** What every HttpCall of this transport shares. */
  private readonly calls: CallContext;
  private closed: Promise<void> | undefined;

  constructor(components: HttpTransportComponents, init: HttpTransportInit) {
    this.calls = {
      clock: components.clock,
      timers: components.timers,
      log: components.log,
      headers: {
        'content-type': 'application/octet-stream',
        authorization: `Bearer ${init.secret}`,
        ...(init.advertise === undefined ? {} : { 'x-ringkv-from': init.advertise }),
      },
      inflight: this.inflight,
      classify: (err, to, opts) => this.classify(err, to, opts),
      onTraffic: init.onTraffic,
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

  send(to: PeerAddress, route: string, body: Uint8Array, opts: SendOptions): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new TransportError('unreachable', to, 'transport closed'));
    let pool: Pool;
    try {
      pool = this.pool(to);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      new HttpCall(this.calls, to, route, opts, resolve, reject).start(pool, body);
    });
  }

  /** Destroys every pool; in-flight sends fail with kind 'aborted'. Idempotent. */
  close(): Promise<void> {
    if (!this.closed) {
      for (const call of this.inflight) call.end('closed');
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

  /** An error undici reported for a call that was still running (an ended call ignores them). */
  private classify(err: unknown, to: PeerAddress, opts: SendOptions): TransportError {
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

/** What an HttpCall needs from its transport. */
interface CallContext {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: TransportLog | undefined;
  readonly headers: Record<string, string>;
  readonly inflight: Set<HttpCall>;
  classify(err: unknown, to: PeerAddress, opts: SendOptions): TransportError;
  readonly onTraffic: HttpTransportInit['onTraffic'];
}

/**
 * One send, as an undici dispatch handler: the reply body is collected from the socket's own
 * chunks, without the Readable stream, AbortController and promises of `request()` (the
 * internal exchange is the node's most frequent call; see docs/benchmarks.md). The call
 * settles exactly once: with the reply, with the peer's error status, with undici's error
 * (classified), or at its deadline, the caller's abort or close(), whichever comes first.
 * A deadline that fires before undici started the request aborts it as soon as it starts.
 */
class HttpCall implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private timer: TimerHandle | undefined;
  private settled = false;
  private status = 0;
  private chunks: Buffer[] = [];
  private size = 0;
  private readonly started: number;
  private readonly onCallerAbort = (): void => this.end('aborted');

  constructor(
    private readonly shared: CallContext,
    private readonly to: PeerAddress,
    private readonly route: string,
    private readonly opts: SendOptions,
    private readonly resolve: (reply: Uint8Array) => void,
    private readonly reject: (err: TransportError) => void,
  ) {
    this.started = shared.clock.monotonic();
  }

  start(pool: Pool, body: Uint8Array): void {
    const { opts } = this;
    const caller = opts.signal;
    if (caller?.aborted) {
      this.end('aborted');
      return;
    }
    // A zero, negative or NaN budget is already spent: fail now rather than send.
    if (!(opts.timeoutMs > 0)) {
      this.end('timeout');
      return;
    }
    caller?.addEventListener('abort', this.onCallerAbort, { once: true });
    const ms = Math.min(opts.timeoutMs, MAX_TIMER_MS);
    this.timer = this.shared.timers.setTimeout(() => this.end('timeout'), ms);
    this.shared.inflight.add(this);
    this.shared.onTraffic?.(this.route, 'sent', body.length);
    pool.dispatch(
      {
        method: 'POST',
        path: `/internal/${encodeURIComponent(this.route)}`,
        headers: this.shared.headers,
        body,
        // undici's own timers are a second line: they also end a call whose socket stalls.
        headersTimeout: ms,
        bodyTimeout: ms,
      },
      this,
    );
  }

  /** Fail the call now with this cause (a no-op once settled) and abort undici's request. */
  end(cause: DeadlineCause): void {
    if (this.settled) return;
    this.fail(deadlineError(cause, this.to, this.opts.timeoutMs));
    this.controller?.abort(new Error(`ringkv call ended: ${cause}`));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.settled) controller.abort(new Error('ringkv call already ended'));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    // An informational (1xx) head is followed by the real one: keep nothing from it.
    this.status = statusCode;
    this.chunks = [];
    this.size = 0;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.shared.onTraffic?.(this.route, 'received', this.size);
    const bytes = this.body();
    if (this.status >= 200 && this.status < 300) {
      this.settle();
      this.resolve(bytes);
      return;
    }
    this.fail(
      new TransportError('remote', this.to, remoteMessage(this.to, this.route, this.status, bytes), {
        status: this.status,
        body: bytes,
      }),
    );
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.settled) return;
    this.fail(this.shared.classify(err, this.to, this.opts));
  }

  /**
   * The reply bytes. undici hands over views of the socket's own reads, which nothing reuses:
   * a single one is kept as is (it pins that read, the reply plus its head). Several are
   * copied into one exact-size buffer, not Buffer.concat's, which would pin a shared 8 KiB
   * pool slab for as long as anyone keeps a view of the reply.
   */
  private body(): Uint8Array {
    const { chunks } = this;
    if (chunks.length === 1) {
      const c = chunks[0] as Buffer;
      return new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
    }
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  private settle(): void {
    this.settled = true;
    this.timer?.cancel();
    this.opts.signal?.removeEventListener('abort', this.onCallerAbort);
    this.shared.inflight.delete(this);
  }

  private fail(error: TransportError): void {
    this.settle();
    this.reject(error);
    this.shared.log?.debug(
      {
        peer: this.to,
        route: this.route,
        kind: error.kind,
        status: error.status,
        ms: this.shared.clock.monotonic() - this.started,
      },
      'internal call failed',
    );
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
