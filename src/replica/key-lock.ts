/**
 * Serialises async work per key. A replica must read-modify-write one key at a time:
 * two concurrent mints from the same local state would hand out the same dot.
 *
 * Not an async function on purpose: every replica write takes the lock, and an async frame
 * (~400 B of heap per pending call) plus the extra promise it awaits were measurable per item
 * under write load. One `then` both releases the key and becomes the next caller's wait.
 */
export class KeyLock {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key);
    let run: Promise<T>;
    try {
      run = prev ? prev.then(fn) : fn();
    } catch (err) {
      // A synchronous throw from fn is that caller's failure, like a rejection.
      run = Promise.reject(err);
    }
    // Settles (never rejects) once `run` has, whatever its outcome; drops the key if nothing
    // queued behind it meanwhile. A later caller chains on it, so it starts only after `run`.
    const release = (): void => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
    const tail: Promise<void> = run.then(release, release);
    this.tails.set(key, tail);
    return run;
  }

  /** Keys with work queued or running (for tests and metrics). */
  get size(): number {
    return this.tails.size;
  }
}
