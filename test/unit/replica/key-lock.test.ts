import { describe, expect, it } from 'vitest';
import { KeyLock } from '../../../src/replica/key-lock.js';

/** A promise with its resolve/reject exposed. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('KeyLock', () => {
  it('runs work for one key one at a time, in call order, and other keys alongside', async () => {
    const lock = new KeyLock();
    const log: string[] = [];
    const first = deferred<void>();
    const a1 = lock.run('a', async () => {
      log.push('a1 start');
      await first.promise;
      log.push('a1 end');
      return 1;
    });
    const a2 = lock.run('a', async () => {
      log.push('a2');
      return 2;
    });
    const b1 = lock.run('b', async () => {
      log.push('b1');
      return 3;
    });
    expect(await b1).toBe(3);
    expect(log).toEqual(['a1 start', 'b1']);
    first.resolve();
    expect(await a1).toBe(1);
    expect(await a2).toBe(2);
    expect(log).toEqual(['a1 start', 'b1', 'a1 end', 'a2']);
  });

  it('a failure reaches only its own caller; the next one still runs after it', async () => {
    const lock = new KeyLock();
    const gate = deferred<void>();
    const failing = lock.run('k', async () => {
      await gate.promise;
      throw new Error('boom');
    });
    let secondStarted = false;
    const second = lock.run('k', async () => {
      secondStarted = true;
      return 'ok';
    });
    await Promise.resolve();
    expect(secondStarted).toBe(false);
    gate.resolve();
    await expect(failing).rejects.toThrow('boom');
    expect(await second).toBe('ok');
  });

  it('a synchronous throw becomes that caller\'s rejection and does not wedge the key', async () => {
    const lock = new KeyLock();
    const thrower = (): Promise<number> => {
      throw new Error('sync');
    };
    await expect(lock.run('k', thrower)).rejects.toThrow('sync');
    expect(await lock.run('k', async () => 7)).toBe(7);
  });

  it('forgets a key once nothing is queued on it', async () => {
    const lock = new KeyLock();
    const gate = deferred<void>();
    const p1 = lock.run('k', () => gate.promise);
    const p2 = lock.run('k', async () => undefined);
    expect(lock.size).toBe(1);
    gate.resolve();
    await Promise.all([p1, p2]);
    // The release runs in the tick after each run settles.
    await new Promise((r) => setImmediate(r));
    expect(lock.size).toBe(0);
    await lock.run('j', async () => Promise.reject(new Error('x'))).catch(() => undefined);
    await new Promise((r) => setImmediate(r));
    expect(lock.size).toBe(0);
  });

  it('a caller arriving while a queued one runs still waits for it (the first release must not drop the key)', async () => {
    const lock = new KeyLock();
    const g1 = deferred<void>();
    const g2 = deferred<void>();
    const log: string[] = [];
    const p1 = lock.run('k', async () => {
      await g1.promise;
      log.push('1 end');
    });
    const p2 = lock.run('k', async () => {
      log.push('2 start');
      await g2.promise;
      log.push('2 end');
    });
    g1.resolve();
    await p1;
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['1 end', '2 start']);
    const p3 = lock.run('k', async () => {
      log.push('3');
    });
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['1 end', '2 start']);
    g2.resolve();
    await Promise.all([p2, p3]);
    expect(log).toEqual(['1 end', '2 start', '2 end', '3']);
  });
});
