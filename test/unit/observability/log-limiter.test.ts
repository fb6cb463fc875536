import { describe, expect, it } from 'vitest';
import { LogLimiter } from '../../../src/observability/log-limiter.js';
import { ManualTime } from '../../../src/runtime/index.js';

describe('LogLimiter', () => {
  it('lets the first event through, holds back the rest of the interval, and counts them in the next', async () => {
    const time = new ManualTime();
    const limiter = new LogLimiter(time, 1000);
    expect(limiter.take()).toBe(0);
    expect(limiter.take()).toBeUndefined();
    await time.advance(999);
    expect(limiter.take()).toBeUndefined();
    await time.advance(1);
    expect(limiter.take()).toBe(2);
    expect(limiter.take()).toBeUndefined();
    await time.advance(5000);
    expect(limiter.take()).toBe(1);
    await time.advance(1000);
    expect(limiter.take()).toBe(0);
  });
});
