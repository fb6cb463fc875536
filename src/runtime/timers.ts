/**
 * Timers as an input. Drivers schedule work through Timers so a simulation can run them
 * from a manual clock, and so stop() can cancel everything a part started.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Timers {
  /** Run `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Resolve after `ms` milliseconds (rejects with the signal's reason if aborted). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Real timers. Handles are unref'd so a forgotten timer never keeps a process alive. */
export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  sleep(ms, signal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
};
