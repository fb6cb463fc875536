/**
 * Serialises async work per key. A replica must read-modify-write one key at a time:
 * two concurrent mints from the same local state would hand out the same dot.
 */
export class KeyLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key);
    const run = prev ? prev.then(fn, fn) : fn();
    // Keep the chain alive even if fn rejects, and drop it once nothing is queued behind us.
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Keys with work queued or running (for tests and metrics). */
  get size(): number {
    return this.tails.size;
  }
}
