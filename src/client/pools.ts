/**
 * The SDK's only I/O: one keep-alive undici Pool per node. `send` performs one HTTP exchange
 * and says, on failure, whether the request can have reached the node. Timeouts, retries and
 * breakers are decided by the caller (dispatch.ts), not here.
 */
import { type Dispatcher, Pool } from 'undici';
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

/**
 * What `send` rejects with once `signal` has fired: the signal's reason, and whether the
 * request had been handed to a connection by then (if not, it never will be).
 */
export class SendAborted extends Error {
  readonly reason: unknown;
  /** The request was handed to a connection, so may have reached the node. */
  readonly sent: boolean;

  constructor(reason: unknown, sent: boolean) {
    super(sent ? 'aborted after the request was sent' : 'aborted before the request was sent');
    this.name = 'SendAborted';
    this.reason = reason;
    this.sent = sent;
  }
}

export class NodePools {
  private readonly pools = new Map<string, Pool>();
  private readonly options: Pool.Options;
  private readonly closing = new Set<Promise<void>>();

  constructor(init: NodePoolsInit) {
    this.options = {
      connections: init.connections,
      keepAliveTimeout: init.keepAliveTimeoutMs ?? 4_000,
      // The caller bounds every exchange (attemptTimeoutMs, up to what a timer holds). undici's
      // own 300 s header and body timeouts would cut a longer attempt short and report it as
      // a lost connection instead of a timeout.
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: { timeout: init.connectTimeoutMs },
    };
  }

  /**
   * One HTTP exchange with `node` (an origin). Rejects with a ConnectionError, or, once
   * `signal` has fired, with a SendAborted (the caller knows why it fired).
   *
   * Whether a failed request can have reached the node decides whether a write may be
   * retried, so it is tracked exactly: undici calls a handler's `onConnect` on the connection
   * the request is about to be written to, right before writing it. Until then the request is
   * waiting for a connection (connecting, or queued behind busy ones) and has not left this
   * process, whatever the error; from then on it may have.
   */
  send(node: string, req: HttpRequest, signal: AbortSignal): Promise<HttpResponse> {
    return new Promise<HttpResponse>((resolve, reject) => {
      if (signal.aborted) {
        reject(new SendAborted(signal.reason, false));
        return;
      }
      let written = false;
      let abortRequest: ((err: Error) => void) | undefined;
      let done = false;
      let status = 0;
      let headers: Record<string, string | string[]> = Object.create(null);
      const chunks: Buffer[] = [];
      const settle = (outcome: () => void): void => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        outcome();
      };
      const abortError = (): Error => (signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      const onAbort = (): void => {
        // A request not yet handed to a connection is dropped when it is (onConnect below).
        abortRequest?.(abortError());
        settle(() => reject(new SendAborted(signal.reason, written)));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const handler: Dispatcher.DispatchHandler = {
        onConnect: (abort) => {
          if (done) {
            abort(abortError());
            return;
          }
          abortRequest = abort;
          written = true;
        },
        onHeaders: (statusCode, raw) => {
          // 1xx (103 Early Hints, say) come before the real answer.
          if (statusCode < 200) return true;
          status = statusCode;
          headers = parseHeaders(raw);
          return true;
        },
        onData: (chunk) => {
          chunks.push(chunk);
          return true;
        },
        onComplete: () => settle(() => resolve({ status, headers, body: concat(chunks) })),
        onError: (err) =>
          settle(() => reject(signal.aborted ? new SendAborted(signal.reason, written) : new ConnectionError(node, written, err))),
      };
      try {
        this.pool(node).dispatch({ method: req.method, path: req.path, headers: req.headers, body: req.body ?? null }, handler);
      } catch (err) {
        settle(() => reject(new ConnectionError(node, false, err)));
      }
    });
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

/** Response headers as undici's request API gives them: lower-case names, repeats as arrays. */
function parseHeaders(raw: Buffer[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    const seen = out[name];
    if (seen === undefined) out[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else out[name] = [seen, value];
  }
  return out;
}

/** The body in a buffer of its own (never a view into a shared pool). */
function concat(chunks: Buffer[]): Uint8Array {
  let length = 0;
  for (const c of chunks) length += c.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
