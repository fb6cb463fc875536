import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ReplicatedServer, startReplicated } from '../../scripts/bench-replicated.mjs';

/** A port that was free a moment ago (the members must know each other's before they listen). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

// The benchmark's replicated baseline (scripts/bench-replicated.mjs): what it measures is only
// worth comparing if it does the work it claims, so check that it replicates and that its
// internal route wants the secret like ringkv's.
describe('replicated baseline (bench target)', () => {
  const secret = 'test-secret-0123456789';
  let dir: string;
  let servers: ReplicatedServer[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ringkv-replicated-'));
    const ports: number[] = [];
    while (ports.length < 3) {
      const p = await freePort();
      if (!ports.includes(p)) ports.push(p);
    }
    const addrs = ports.map((p) => `127.0.0.1:${p}`);
    servers = await Promise.all(
      ports.map((port, i) =>
        startReplicated({
          host: '127.0.0.1',
          port,
          data: join(dir, `r${i}`),
          peers: [1, 2].map((k) => addrs[(i + k) % 3] as string),
          secret,
        }),
      ),
    );
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores a PUT on every node and serves it from any of them', async () => {
    const value = Buffer.from('hello replicated');
    const put = await request(`${servers[0]!.url}/v1/kv/k%2F1`, { method: 'PUT', body: value });
    await put.body.dump();
    expect(put.statusCode).toBe(204);
    // W=2 answers before the third copy lands: wait for it with a deadline, not a sleep.
    for (const s of servers) {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const got = await request(`${s.url}/v1/kv/k%2F1`);
        const body = Buffer.from(await got.body.arrayBuffer());
        if (got.statusCode === 200) {
          expect(body.equals(value)).toBe(true);
          break;
        }
        expect(got.statusCode).toBe(404);
        expect(Date.now(), `${s.url} never got the write`).toBeLessThan(deadline);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const missing = await request(`${servers[1]!.url}/v1/kv/never-written`);
    await missing.body.dump();
    expect(missing.statusCode).toBe(404);
  });

  it('refuses internal batches without the cluster secret, or with a wrong one', async () => {
    const body = Buffer.from([1, 0, 1, 0x6b, 0, 0, 0, 1, 0x78]); // one write of k = "x"
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${secret}x`]) {
      const res = await request(`${servers[2]!.url}/internal/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', ...(authorization ? { authorization } : {}) },
        body,
      });
      await res.body.dump();
      expect(res.statusCode).toBe(401);
    }
    // Nothing was written by the refused batches.
    const got = await request(`${servers[2]!.url}/v1/kv/k`);
    await got.body.dump();
    expect(got.statusCode).toBe(404);
  });
});
