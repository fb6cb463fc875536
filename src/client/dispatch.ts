/**
 * One logical call = attempts against nodes until one answers. This is where deadlines,
 * failover, retries with backoff and the per-node breakers are composed around a single
 * HTTP exchange (NodePools.send); the methods of Client only build requests and decode.
 *
 * An attempt fails in one of two ways that matter for writes:
 *   - not sent: the request certainly never reached a node: it failed or timed out before
 *     it was handed to a connection (connect refused, DNS, connect timeout, queued behind
 *     busy connections), the breaker was open, or a node shutting down refused it. Retrying
 *     is always safe.
 *   - unknown outcome: the node may have applied it (attempt timeout or connection lost
 *     after the request was handed to a connection, 503 quorum failure, other 5xx). Reads
 *     retry anyway; writes only when the call allows it (`retryUnknown`; see docs/client.md).
 */
import type { Clock } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { Timers } from '../runtime/timers.js';
import { backoffDelay } from './backoff.js';
import type { BreakerPermit } from './breaker.js';
import { serverFailure } from './decode.js';
import {
  AbortError,
  CircuitOpenError,
  ClientClosedError,
  ConnectionError,
  type NodeFailure,
  QuorumError,
  type RingkvClientError,
  TimeoutError,
  UnavailableError,
} from './errors.js';
import type { NodeSet } from './node-set.js';
import { type HttpRequest, type HttpResponse, type NodePools, SendAborted } from './pools.js';
import type { BackoffOptions } from './types.js';

export interface DispatchComponents {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly random: Random;
  readonly pools: NodePools;
  readonly nodes: NodeSet;
}

export interface DispatchInit {
  readonly attemptTimeoutMs: number;
  readonly backoff: BackoffOptions;
  /** Told about every attempt that failed because of the node (for discovery refreshes). */
  readonly onNodeFailure?: (node: string, error: RingkvClientError) => void;
}

/** A request before the per-attempt `timeout` query parameter is added. */
export interface CallRequest {
  readonly method: HttpRequest['method'];
  readonly path: string;
  readonly query: Readonly<Record<string, string | undefined>>;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array;
  /** Send `timeout=<ms>` so the server gives up (and says how many replicas answered) first. */
  readonly serverTimeout: boolean;
}

export interface CallPolicy {
  readonly timeoutMs: number;
  readonly retries: number;
  readonly signal: AbortSignal | undefined;
  /** Retry attempts whose outcome is unknown (always true for reads). */
  readonly retryUnknown: boolean;
}

/** A response below 500, and who gave it. */
export interface Answer {
  readonly node: string;
  readonly response: HttpResponse;
  /** Wall-clock time the answer arrived (epoch ms). */
  readonly receivedAt: number;
}

/** The server's own timeout is this share of the attempt's budget, leaving time for the reply. */
const SERVER_TIMEOUT_SHARE = 0.8;
const MAX_SERVER_TIMEOUT_MS = 600_000;

/** Thrown inside an attempt when its own budget runs out. */
class AttemptTimeout extends Error {
  /** The request had been handed to a connection (so may have been applied). */
  readonly sent: boolean;

  constructor(sent: boolean) {
    super('attempt timed out');
    this.sent = sent;
  }
}

type Failure = { error: RingkvClientError; sent: boolean };

export class Dispatcher {
  private readonly c: DispatchComponents;
  private readonly init: DispatchInit;
  private closed = false;
  /** Ends every attempt and backoff sleep still running when close() is called. */
  private readonly onClose = new Set<() => void>();

  constructor(components: DispatchComponents, init: DispatchInit) {
    this.c = components;
    this.init = init;
  }

  /**
   * After this, every call fails with ClientClosedError, including calls already running:
   * their attempt in flight is aborted and a backoff sleep ends at once, so nothing is sent
   * after close() and close() never waits out a hung node.
   */
  close(): void {
    this.closed = true;
    for (const end of [...this.onClose]) end();
    this.onClose.clear();
  }

  async call(req: CallRequest, policy: CallPolicy): Promise<Answer> {
    const { clock, nodes } = this.c;
    const { signal } = policy;
    if (this.closed) throw new ClientClosedError();
    if (signal?.aborted) throw new AbortError(signal.reason);
    const deadline = clock.monotonic() + policy.timeoutMs;
    const order = nodes.rotation();
    const causes: NodeFailure[] = [];
    const openSeen = new Set<string>();
    let cursor = 0;
    let retry = 0;

    for (;;) {
      if (signal?.aborted) throw new AbortError(signal.reason);
      if (this.closed) throw new ClientClosedError();
      // The next node whose breaker lets a request through, going round the list once.
      let node: string | undefined;
      let permit: BreakerPermit | undefined;
      for (let scanned = 0; scanned < order.length && node === undefined; scanned++) {
        const candidate = order[cursor++ % order.length]!;
        permit = nodes.acquire(candidate);
        if (permit) node = candidate;
        else if (!openSeen.has(candidate)) {
          openSeen.add(candidate);
          causes.push({ node: candidate, error: new CircuitOpenError(candidate) });
        }
      }
      if (node === undefined || permit === undefined) throw this.giveUp(causes, policy, false);

      const left = deadline - clock.monotonic();
      if (left <= 0) {
        permit.release();
        throw this.giveUp(causes, policy, true);
      }
      const attemptMs = Math.min(this.init.attemptTimeoutMs, left);

      let failure: Failure;
      try {
        const response = await this.attempt(node, req, attemptMs, signal);
        if (response.status < 500) {
          permit.success();
          return { node, response, receivedAt: clock.now() };
        }
        const error = serverFailure(response, node);
        // A quorum failure is a sane answer from a live node: the replicas behind it are the
        // problem, so it moves the call on without counting against this node's breaker.
        if (error instanceof QuorumError) permit.success();
        else permit.failure();
        // A node that is shutting down refuses with 503 UNAVAILABLE before doing anything:
        // certainly not applied, so even a write may be retried on another node.
        const refused = response.status === 503 && error.code === 'UNAVAILABLE';
        failure = { error, sent: !refused };
      } catch (err) {
        if (signal?.aborted) {
          permit.release();
          throw new AbortError(signal.reason);
        }
        if (this.closed) {
          permit.release();
          throw new ClientClosedError();
        }
        permit.failure();
        if (err instanceof AttemptTimeout) {
          // Out of time while still connecting, or queued behind this node's busy connections:
          // never sent, so even a blind write may move on to the next node.
          const what = err.sent ? 'no answer' : 'request not sent (no connection free or made)';
          failure = { error: new TimeoutError(`${node}: ${what} within ${attemptMs} ms`, attemptMs), sent: err.sent };
        } else if (err instanceof ConnectionError) {
          failure = { error: err, sent: err.sent };
        } else {
          throw err;
        }
      }

      causes.push({ node, error: failure.error });
      this.init.onNodeFailure?.(node, failure.error);
      if (clock.monotonic() >= deadline) throw this.giveUp(causes, policy, true);
      if (failure.sent && !policy.retryUnknown) throw this.unknownOutcome(failure.error, causes, policy);
      if (retry >= policy.retries) throw this.giveUp(causes, policy, false);
      retry++;
      const wait = Math.min(backoffDelay(retry, this.c.random, this.init.backoff), deadline - clock.monotonic());
      if (wait > 0) {
        try {
          await this.pause(wait, signal);
        } catch {
          if (signal?.aborted) throw new AbortError(signal.reason);
          throw new ClientClosedError();
        }
      }
    }
  }

  /**
   * Whether `node` answers `GET /v1/health` with a 200 within one attempt's budget. Outside
   * the call machinery: no breaker, no retry, no failure report. close() ends it (false).
   */
  async probe(node: string): Promise<boolean> {
    if (this.closed) return false;
    try {
      const req: CallRequest = { method: 'GET', path: '/v1/health', query: {}, headers: {}, serverTimeout: false };
      const res = await this.attempt(node, req, this.init.attemptTimeoutMs, undefined);
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** One HTTP exchange bounded by `attemptMs` and the caller's signal. */
  private async attempt(node: string, req: CallRequest, attemptMs: number, signal: AbortSignal | undefined): Promise<HttpResponse> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = this.c.timers.setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`attempt budget of ${attemptMs} ms spent`));
    }, attemptMs);
    const onAbort = (): void => controller.abort(signal?.reason);
    const onClose = (): void => controller.abort(new ClientClosedError());
    signal?.addEventListener('abort', onAbort, { once: true });
    this.onClose.add(onClose);
    try {
      return await this.c.pools.send(node, { ...req, path: this.path(req, attemptMs) }, controller.signal);
    } catch (err) {
      if (timedOut && !signal?.aborted && !this.closed) throw new AttemptTimeout(!(err instanceof SendAborted) || err.sent);
      throw err;
    } finally {
      timer.cancel();
      signal?.removeEventListener('abort', onAbort);
      this.onClose.delete(onClose);
    }
  }

  /** A backoff sleep that the caller's signal and close() both end early (rejecting). */
  private async pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal?.reason);
    const onClose = (): void => controller.abort(new ClientClosedError());
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    this.onClose.add(onClose);
    try {
      await this.c.timers.sleep(ms, controller.signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.onClose.delete(onClose);
    }
  }

  private path(req: CallRequest, attemptMs: number): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(req.query)) if (v !== undefined) params.set(k, v);
    if (req.serverTimeout) {
      const t = Math.min(MAX_SERVER_TIMEOUT_MS, Math.max(1, Math.floor(attemptMs * SERVER_TIMEOUT_SHARE)));
      params.set('timeout', String(t));
    }
    const qs = params.toString();
    return qs === '' ? req.path : `${req.path}?${qs}`;
  }

  /**
   * The error for a call that ran out of time or attempts: TimeoutError past the deadline;
   * otherwise the latest quorum failure if any node got that far (it says how many replicas
   * answered); otherwise UnavailableError listing every attempt.
   */
  private giveUp(causes: NodeFailure[], policy: CallPolicy, timedOut: boolean): RingkvClientError {
    if (timedOut) {
      return new TimeoutError(`no answer within ${policy.timeoutMs} ms (${summary(causes)})`, policy.timeoutMs, causes);
    }
    for (let i = causes.length - 1; i >= 0; i--) {
      const e = causes[i]!.error;
      if (e instanceof QuorumError) return e;
    }
    return new UnavailableError(`no node could serve the request (${summary(causes)})`, causes);
  }

  /** A write whose attempt may have been applied, and which the caller did not allow to retry. */
  private unknownOutcome(error: RingkvClientError, causes: NodeFailure[], policy: CallPolicy): RingkvClientError {
    if (error instanceof QuorumError) return error;
    if (error instanceof TimeoutError) {
      return new TimeoutError(`${error.message}; the write may or may not have been applied`, policy.timeoutMs, causes);
    }
    return new UnavailableError(`${error.message}; the write may or may not have been applied`, causes);
  }
}

function summary(causes: NodeFailure[]): string {
  if (causes.length === 0) return 'no nodes to try';
  return causes.map((c) => `${c.node}: ${c.error.code}`).join('; ');
}
