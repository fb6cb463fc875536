import type { Timers } from '../runtime/timers.js';
import { type PeerAddress, TransportError } from './transport.js';

/** Why a deadline's signal fired. */
export type DeadlineCause = 'timeout' | 'aborted' | 'closed';

/**
 * One call's budget: a signal that fires when `timeoutMs` elapses (measured on the injected
 * Timers), when the caller's signal aborts, or when `end('closed')` is called (transports
 * call it on every in-flight deadline from close()), whichever is first. `cause` says which,
 * so a failure is classified without guessing from whatever error an I/O library threw.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  readonly cause: DeadlineCause | undefined;
  /** Fire now with this cause (no-op if already fired). */
  end(cause: DeadlineCause): void;
  /** Cancel the timer and detach from the caller's signal; call in `finally`. Idempotent. */
  dispose(): void;
}

/** Node clamps larger delays to 1 ms; a longer budget is treated as this one. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export function startDeadline(timers: Timers, timeoutMs: number, caller: AbortSignal | undefined): Deadline {
  const controller = new AbortController();
  let cause: DeadlineCause | undefined;
  const end = (why: DeadlineCause): void => {
    if (cause !== undefined) return;
    cause = why;
    controller.abort(why);
  };
  const onCaller = (): void => end('aborted');

  if (caller?.aborted) end('aborted');
  else caller?.addEventListener('abort', onCaller, { once: true });
  // A zero, negative or NaN budget is already spent: fail now rather than send.
  if (!(timeoutMs > 0)) end('timeout');
  const timer = cause === undefined ? timers.setTimeout(() => end('timeout'), Math.min(timeoutMs, MAX_TIMER_MS)) : undefined;

  return {
    signal: controller.signal,
    get cause() {
      return cause;
    },
    end,
    dispose() {
      timer?.cancel();
      caller?.removeEventListener('abort', onCaller);
    },
  };
}

/** The TransportError for a call ended by its deadline. */
export function deadlineError(cause: DeadlineCause, peer: PeerAddress, timeoutMs: number, err?: unknown): TransportError {
  const extra = err === undefined ? undefined : { cause: err };
  switch (cause) {
    case 'timeout':
      return new TransportError('timeout', peer, `request to ${peer} timed out after ${timeoutMs} ms`, extra);
    case 'aborted':
      return new TransportError('aborted', peer, `request to ${peer} aborted by caller`, extra);
    case 'closed':
      return new TransportError('aborted', peer, `request to ${peer} aborted: transport closed`, extra);
  }
}

/**
 * Settle with `work`, or reject as soon as `signal` fires (the work itself keeps running;
 * callers that can cancel it pass the same signal into it).
 */
export function raceSignal<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
