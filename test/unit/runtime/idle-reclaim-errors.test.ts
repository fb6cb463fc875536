/**
 * The idle memory reclaimer under failure: a probe that throws (EMFILE when the process is out
 * of file descriptors) or a collection that throws must not kill the node or stop the loop.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdleReclaimer, processProbes } from '../../../src/runtime/idle-reclaim.js';
import { ManualTime } from '../../../src/runtime/index.js';

const g = globalThis as { gc?: () => void };
const hadGc = typeof g.gc === 'function';

function emfile(): never {
  // What process.memoryUsage() throws once the process has run out of file descriptors
  // (it reads /proc/self/stat for the RSS): checked with `ulimit -n 64` on node 20.
  throw Object.assign(new Error('EMFILE: too many open files, uv_resident_set_memory'), { code: 'EMFILE' });
}

describe('IdleReclaimer in a process that runs out of file descriptors', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    if (!hadGc) delete g.gc;
  });

  it('keeps the node alive and keeps checking when the heap probe fails', async () => {
    // The image and `npm run bench` run nodes with --expose-gc, so processProbes() is live.
    setFlagsFromString('--expose-gc');
    g.gc ??= runInNewContext('gc') as () => void;
    const probes = processProbes();
    expect(probes).toBeDefined();
    const time = new ManualTime(0);
    const reclaimer = new IdleReclaimer(
      { ...probes!, timers: time, monotonicMs: () => time.monotonic() },
      // Always "quiet" and no garbage threshold: every check that can read the heap collects.
      { checkMs: 1000, quietShare: 1, minGarbageBytes: 0 },
    );
    reclaimer.start(Number.POSITIVE_INFINITY);
    const spy = vi.spyOn(process, 'memoryUsage').mockImplementation(emfile as never);
    // With real timers a throw out of this timer callback is an uncaught exception: nothing in
    // the CLI handles those, so the node process dies (no clean LevelDB close, no leave).
    await expect(time.advance(1000)).resolves.toBeUndefined();
    spy.mockRestore();
    // And the loop must still be running once descriptors are back.
    await time.advance(1000);
    await time.advance(1000);
    expect(reclaimer.count).toBeGreaterThan(0);
    reclaimer.stop();
  });
});

describe('IdleReclaimer loop', () => {
  it('survives a probe or collection that throws once, and checks on', async () => {
    const time = new ManualTime(0);
    let fail = true;
    let heap = 100;
    const reclaimer = new IdleReclaimer(
      {
        timers: time,
        monotonicMs: () => time.monotonic(),
        busyMs: () => 0,
        heapUsed: () => heap,
        collect: () => {
          if (fail) {
            fail = false;
            throw new Error('probe failed');
          }
          heap = 10;
        },
      },
      { checkMs: 1000, quietShare: 1, minGarbageBytes: 0 },
    );
    reclaimer.start(0);
    await expect(time.advance(1000)).resolves.toBeUndefined();
    await time.advance(1000);
    expect(reclaimer.count).toBe(1);
    reclaimer.stop();
  });
});
