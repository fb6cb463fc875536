import { describe, expect, it } from 'vitest';
import { settleAll } from '../../../src/settle.js';

describe('settleAll', () => {
  it('fulfils with every value in input order', async () => {
    const late = new Promise<number>((r) => setImmediate(() => r(1)));
    expect(await settleAll([late, Promise.resolve(2), Promise.resolve(3)])).toEqual([1, 2, 3]);
    expect(await settleAll([])).toEqual([]);
  });

  it('rejects with the first failure in input order, and only once everything settled', async () => {
    let slowDone = false;
    const slow = new Promise<string>((r) =>
      setTimeout(() => {
        slowDone = true;
        r('slow');
      }, 20),
    );
    const first = new Error('first');
    const second = new Error('second');
    const outcome = settleAll<string>([slow, Promise.reject(first), Promise.reject(second)]).then(
      () => 'fulfilled',
      (err: unknown) => ({ err, slowDone }),
    );
    expect(await outcome).toEqual({ err: first, slowDone: true });
  });
});
