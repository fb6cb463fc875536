/**
 * The idle reclaimer with this process's real probes (event-loop utilisation, heap in use,
 * V8's gc() under --expose-gc), in a child node process the test controls completely.
 *
 * Why not a running node: whether a node's burst of garbage is still there at its next
 * quiet check depends on V8's own collections (when incremental marking starts, when its
 * tasks run), which depend on timing and machine load; a test that waited for that was
 * flaky in CI. Here the garbage is held live through the quiet spell (no collection can free
 * it), a full collection ends any marking V8 started meanwhile, and the garbage is dropped
 * and checked at once, so the outcome is fixed.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const RECLAIM = pathToFileURL(join(import.meta.dirname, '../../dist/runtime/idle-reclaim.js')).href;
const MiB = 1024 * 1024;

const SCRIPT = `
import { IdleReclaimer, processProbes } from ${JSON.stringify(RECLAIM)};
const probes = processProbes();
if (probes === undefined) { console.log(JSON.stringify({ probes: false })); process.exit(0); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const collections = [];
const reclaimer = new IdleReclaimer(
  {
    timers: { setTimeout: () => ({ cancel() {} }), sleep },
    monotonicMs: () => performance.now(),
    ...probes,
    onCollected: (before, after) => collections.push({ before, after }),
  },
  // checkMs is unused (the script calls check() itself); a wide quiet share leaves room for
  // the allocation below inside the quiet window.
  { checkMs: 1e9, quietShare: 0.25, minGarbageBytes: 16 * ${MiB} },
);
probes.collect();
reclaimer.start(); // low-water mark: the heap now
// 48 MiB of arrays (old generation, large-object space), live until the check. On globalThis:
// a local that is only overwritten after an await is dead across it, and V8 frees it early.
globalThis.hold = Array.from({ length: 48 }, () => new Array(128 * 1024).fill(1.5));
// Busy: the heap has grown well past the threshold, but the event loop has been working the
// whole time, so no collection.
const spinUntil = performance.now() + 600;
while (performance.now() < spinUntil);
const busy = reclaimer.check();
// Quiet: 2.5 s of nothing; the garbage is still live, so no collection can take it.
await sleep(2500);
// End any collection cycle V8 started meanwhile, so none can complete between the drop and
// the check; the arrays, still held, survive it.
globalThis.gc();
globalThis.hold = undefined;
const quiet = reclaimer.check();
console.log(JSON.stringify({ probes: true, busy, quiet, collections, count: reclaimer.count }));
`;

function runChild(flags: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...flags, '--input-type=module', '-e', SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe('idle reclaim with real process probes', () => {
  it('with --expose-gc: not while busy; once quiet, one collection gives the dropped garbage back', async () => {
    const r = await runChild(['--expose-gc']);
    expect(r.code, r.err).toBe(0);
    const res = JSON.parse(r.out) as {
      probes: boolean;
      busy: boolean;
      quiet: boolean;
      count: number;
      collections: { before: number; after: number }[];
    };
    expect(res.probes).toBe(true);
    expect(res.busy).toBe(false);
    expect(res.quiet).toBe(true);
    expect(res.count).toBe(1);
    expect(res.collections).toHaveLength(1);
    const c = res.collections[0] as { before: number; after: number };
    expect(c.before - c.after).toBeGreaterThan(40 * MiB);
  });

  it('without --expose-gc there are no probes (the node then logs that the reclaim is off)', async () => {
    const r = await runChild([]);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ probes: false });
  });
});
