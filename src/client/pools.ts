/**
 * The SDK's only I/O: one keep-alive undici Pool per node. `send` performs one HTTP exchange
 * and says, on failure, whether the request can have reached the node. Timeouts, retries and
 * breakers are decided by the caller (dispatch.ts), not here.
 */
import { buildConnector, Pool } from 'undici';
import { ConnectionError } from './errors.js';

export interface HttpRequest {
  readonly method: 'GET' | 'PUT' | 'DELETE';
  /** Path and query, e.g. `/v1/kv/a%2Fb?r=2`. */
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Uint8Array;
}

export interface NodePoolsInit {
  /** TCP connect timeout in ms. */
  readonly connectTimeoutMs: number;
  /** Keep-alive connections per node. */
  readonly connections: number;
  /** Idle keep-alive lifetime in ms (the server's Keep-Alive hint may lower it). */
  readonly keepAliveTimeoutMs?: number;
}

/** Error codes that can only arise before a byte of the request left this process. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  // A pool closed under us (the node left the list) refuses new requests before sending.
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);

export class NodePools {
  private readonly pools = new Map<string, Pool>();
  private readonly options: Pool.Options;
  /** Errors raised by the connector: the request was certainly not written. */
  private readonly connectErrors = new WeakSet<object>();
  private readonly closing = new Set<Promise<void>>();

  constructor(init: NodePoolsInit) {
    const base = buildConnector({ timeout: init.connectTimeoutMs });
    // Tag connector errors: codes such as ECONNRESET can mean "never connected" or "died
    // mid-request"; only the connector knows which, and retry safety depends on it.
    const connect: buildConnector.connector = (options, callback) => {
      base(options, (...args) => {
        if (args[0]) this.connectErrors.add(args[0]);
        callback(...args);
      });
    };
    this.options = {
      connections: init.connections,
      keepAliveTimeout: init.keepAliveTimeoutMs ?? 4_000,
      connect,
    };
  }

  /**
   * One HTTP exchange with `node` (an origin). Rejects with a ConnectionError, or with
   * whatever undici threw once `signal` has fired (the caller knows why it fired).
   */
  async send(node: string, req: HttpRequest, signal: AbortSignal): Promise<HttpResponse> {
    try {
      const res = await this.pool(node).request({
        method: req.method,
        path: req.path,
        headers: req.headers,
        body: req.body,
        signal,
      });
      const body = await res.body.bytes();
      return { status: res.statusCode, headers: res.headers, body };
    } catch (err) {
      if (signal.aborted) throw err;
      const tagged = typeof err === 'object' && err !== null && this.connectErrors.has(err);
      const code = errorCode(err);
      throw new ConnectionError(node, !(tagged || (code !== undefined && NOT_SENT_CODES.has(code))), err);
    }
  }

  /** Closes the pools of nodes no longer in `keep` (after their in-flight requests end). */
  retain(keep: ReadonlySet<string>): void {
    for (const [node, pool] of this.pools) {
      if (keep.has(node)) continue;
      this.pools.delete(node);
      this.track(pool.close());
    }
  }

  /** Destroys every pool; in-flight requests fail. Idempotent. */
  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    for (const p of pools) this.track(p.destroy());
    await Promise.all([...this.closing]);
  }

  private track(p: Promise<void>): void {
    const settled = p.catch(() => undefined);
    this.closing.add(settled);
    void settled.then(() => this.closing.delete(settled));
  }

  private pool(node: string): Pool {
    let pool = this.pools.get(node);
    if (!pool) {
      pool = new Pool(node, this.options);
      this.pools.set(node, pool);
    }
    return pool;
  }
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // Happy-eyeballs connects fail with an AggregateError of per-address errors.
  const inner = (err as { errors?: unknown }).errors;
  if (Array.isArray(inner)) return errorCode(inner[0]);
  const cause = (err as { cause?: unknown }).cause;
  return cause === undefined ? undefined : errorCode(cause);
}
