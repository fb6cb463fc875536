/**
 * SPEC §1: `npm start` builds, then starts a local 3-node dev cluster (zones a, b, c, data
 * under ./data/, one random secret), prints the endpoints and a sample curl, and Ctrl-C stops
 * all three cleanly. Here the launcher (cluster/dev-cluster.mjs, which `npm start` runs after
 * the build) runs on free ports with a temporary data directory (RINGKV_DEV_PORTS and
 * RINGKV_DEV_DATA), so it never meets a dev cluster already running on 8081-8083.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitQuorumReady } from '../helpers/cluster-ready.js';
import { freePort, waitFor } from '../helpers/ports.js';

const LAUNCHER = resolve(import.meta.dirname, '../../cluster/dev-cluster.mjs');
const RUNTIME = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../scripts/runtime.json'), 'utf8')) as {
  nodeFlags: string[];
  env: Record<string, string>;
};

/** Pids of the processes whose command line holds `text`, with their arguments. */
async function processesWith(text: string): Promise<{ pid: number; argv: string[] }[]> {
  const out: { pid: number; argv: string[] }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
    } catch {
      continue; // gone meanwhile
    }
    if (argv.some((a) => a.includes(text))) out.push({ pid: Number(entry), argv });
  }
  return out;
}

/** The child's exit, or 'timeout' after `ms` (the timer is cleared either way). */
function exitWithin(child: ChildProcess, ms: number): Promise<{ code: number | null; signal: string | null } | 'timeout'> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((r) => {
    const timer = setTimeout(() => r('timeout'), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      r({ code, signal });
    });
  });
}

async function refused(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/v1/health`, { signal: AbortSignal.timeout(2_000) });
    return false;
  } catch {
    return true;
  }
}

describe('the dev cluster launcher (npm start)', () => {
  it('starts three nodes in zones a, b, c, prints endpoints and a sample curl, and Ctrl-C stops all three', async () => {
    const data = await mkdtemp(join(tmpdir(), 'ringkv-dev-cluster-'));
    const ports = [await freePort(), await freePort(), await freePort()];
    const env: NodeJS.ProcessEnv = { ...process.env, RINGKV_DEV_PORTS: ports.join(','), RINGKV_DEV_DATA: data };
    delete env.RINGKV_SECRET;
    // Its own process group, as in a terminal: Ctrl-C signals the launcher and its nodes alike.
    const launcher = spawn(process.execPath, [LAUNCHER], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const group = -(launcher.pid as number);
    const running = () => launcher.exitCode === null && launcher.signalCode === null;
    let out = '';
    launcher.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    launcher.stderr?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    try {
      // The launcher waits up to 30 s for the nodes to converge and then prints its banner
      // either way; a slow machine may get the second one.
      await waitFor('the launcher to print its banner', () => /ringkv dev cluster (is up \(3 nodes, zones a b c\)|started \(not converged yet)/.test(out), 60_000, 100);
      for (const [i, zone] of ['a', 'b', 'c'].entries()) {
        expect(out).toContain(`n${i + 1}  http://127.0.0.1:${ports[i]}   zone ${zone}   data ${join(data, `n${i + 1}`)}`);
      }
      expect(out).toMatch(new RegExp(`curl -i -X PUT .* http://127\\.0\\.0\\.1:${ports[0]}/v1/kv/greeting`));
      expect(out).toMatch(/cluster secret \(admin routes\): \S{16,}/);

      // The three nodes are one cluster: a write through n1 reads back through n2.
      await waitQuorumReady(ports.map((p) => `http://127.0.0.1:${p}`));
      const put = await fetch(`http://127.0.0.1:${ports[0]}/v1/kv/greeting?w=all`, { method: 'PUT', body: 'hello', headers: { 'content-type': 'text/plain' } });
      expect(put.status).toBe(204);
      const got = await fetch(`http://127.0.0.1:${ports[1]}/v1/kv/greeting`);
      expect(got.status).toBe(200);
      expect(await got.text()).toBe('hello');
      const zones = (await (await fetch(`http://127.0.0.1:${ports[2]}/v1/cluster`)).json()) as { members: { id: string; zone: string }[] };
      expect(zones.members.map((m) => `${m.id}:${m.zone}`).sort()).toEqual(['n1:a', 'n2:b', 'n3:c']);
      expect((await readdir(data)).sort()).toEqual(['n1', 'n2', 'n3']);

      // The nodes run as the image runs them (scripts/runtime.json): its Node flags, and its
      // preloaded allocator, which .ci/run installs.
      const nodeProcs = await processesWith(data);
      expect(nodeProcs.length).toBe(3);
      const library = RUNTIME.env.LD_PRELOAD?.split('/').pop() ?? '';
      expect(library).not.toBe('');
      for (const p of nodeProcs) {
        expect(p.argv.slice(1, 1 + RUNTIME.nodeFlags.length)).toEqual(RUNTIME.nodeFlags);
        expect(await readFile(`/proc/${p.pid}/maps`, 'utf8')).toContain(`/${library}`);
      }
      expect(out).not.toContain('cannot be preloaded');

      // Ctrl-C: the launcher stops every node, each exits cleanly, and then the launcher itself.
      process.kill(group, 'SIGINT');
      expect(await exitWithin(launcher, 30_000), out.slice(-2000)).toEqual({ code: 0, signal: null });
      for (const id of ['n1', 'n2', 'n3']) expect(out).toContain(`[${id}] exited (0)`);
      for (const port of ports) expect(await refused(port)).toBe(true);
    } finally {
      if (running()) {
        process.kill(group, 'SIGINT');
        await exitWithin(launcher, 15_000);
      }
      // Whatever happened above, nothing of the group outlives the test.
      try {
        process.kill(group, 'SIGKILL');
      } catch {
        // the group is gone already
      }
      await rm(data, { recursive: true, force: true });
    }
  }, 120_000);
});
