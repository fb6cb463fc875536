import type { Clock } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { Timers } from '../runtime/timers.js';
import { CircuitOpenError } from './breaker.js';
import { type PeerAddress, type SendOptions, type Transport, TransportError } from './transport.js';

export interface RetryComponents {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly random: Random;
}

export interface RetryInit {
  /** Backoff before the 2nd attempt is drawn from [0, baseMs); it doubles per attempt. */
  readonly baseMs?: number;
  /** Upper bound of any single backoff. */
  readonly capMs?: number;
  /** Attempts in total, the first included. */
  readonly maxAttempts?: number;
  /** 'remote' statuses worth another try: the peer is overloaded or a proxy failed, not the request. */
  readonly retryStatuses?: readonly number[];
  /**
   * Cap on one attempt's budget. By default an attempt may use all the time left, so a peer
   * that swallows packets gets no retry; a cap leaves room to try again within the deadline.
   */
  readonly attemptTimeoutMs?: number;
}

export const RETRY_DEFAULTS = {
  baseMs: 20,
  capMs: 1_000,
  maxAttempts: 4,
  retryStatuses: [502, 503, 504],
} as const satisfies RetryInit;

/**
 * Retries idempotent sends that failed for reasons another try may cure ('unreachable',
 * 'timeout', 'remote' 502/503/504), with full-jitter exponential backoff
 * (sleep = random × min(cap, base × 2^attempt)). The caller's `timeoutMs` is the budget of the
 * whole call, measured on the injected Clock: each attempt gets what is left of it, and no
 * backoff is started that would end past it. Non-idempotent sends pass straight through.
 */
export function withRetry(inner: Transport, components: RetryComponents, init: RetryInit = {}): Transport {
  const { clock, timers, random } = components;
  const baseMs = init.baseMs ?? RETRY_DEFAULTS.baseMs;
  const capMs = init.capMs ?? RETRY_DEFAULTS.capMs;
  const maxAttempts = Math.max(1, init.maxAttempts ?? RETRY_DEFAULTS.maxAttempts);
  const retryStatuses = new Set<number>(init.retryStatuses ?? RETRY_DEFAULTS.retryStatuses);
  const attemptTimeoutMs = init.attemptTimeoutMs;

  const retryable = (err: unknown): boolean => {
    if (!(err instanceof TransportError)) return false;
    // An open breaker already said this peer is down; retrying would only burn the deadline.
    if (err instanceof CircuitOpenError) return false;
    if (err.kind === 'unreachable' || err.kind === 'timeout') return true;
    return err.kind === 'remote' && err.status !== undefined && retryStatuses.has(err.status);
  };

  async function send(to: PeerAddress, route: string, body: Uint8Array, opts: SendOptions): Promise<Uint8Array> {
    if (!opts.idempotent) return inner.send(to, route, body, opts);
    const deadline = clock.monotonic() + opts.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const left = deadline - clock.monotonic();
      const timeoutMs = attemptTimeoutMs === undefined ? left : Math.min(left, attemptTimeoutMs);
      try {
        return await inner.send(to, route, body, { ...opts, timeoutMs });
      } catch (err) {
        if (attempt + 1 >= maxAttempts || !retryable(err)) throw err;
        const backoff = random.next() * Math.min(capMs, baseMs * 2 ** attempt);
        // Sleeping past the deadline would leave no time to try again: give up now.
        if (clock.monotonic() + backoff >= deadline) throw err;
        try {
          await timers.sleep(backoff, opts.signal);
        } catch {
          throw new TransportError('aborted', to, `request to ${to} aborted by caller`, { cause: err });
        }
      }
    }
  }

  return { send, close: () => inner.close() };
}
