/**
 * SPEC §1: the `ringkv node` process (built `dist/cli.js`). Flags and RINGKV_* env vars, exit
 * code 2 with a one-line message naming the flag, refusing to start on a data directory it
 * cannot open, graceful shutdown on SIGINT/SIGTERM, and restart after kill -9 with every
 * acknowledged write intact.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { binaryValue } from '../helpers/api-cases.js';
import { type NodeProcess as NodeProcessType, NodeProcess, runNodeToExit, type SpawnOptions } from '../helpers/node-process.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { parseExposition } from '../helpers/prometheus.js';
import { errorOf, errorShape, kvPath, type RawResponse, raw } from '../helpers/raw-http.js';

/** Every flag of SPEC §1's table. */
const SPEC_FLAGS = [
  'id',
  'listen',
  'advertise',
  'seeds',
  'data',
  'zone',
  'weight',
  'secret',
  'n',
  'r',
  'w',
  'hinted-handoff',
  'anti-entropy-interval-ms',
  'gossip-interval-ms',
  'max-value-bytes',
];

const SECRET = 'cli-test-secret-7f3a9c1e5b';

let root: string;
const live = new Set<NodeProcessType>();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ringkv-cli-test-'));
});

afterEach(async () => {
  // Whatever a test left running is killed here, even when it failed halfway.
  await Promise.all([...live].map((p) => p.kill('SIGKILL')));
  live.clear();
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let dirSeq = 0;
async function freshDir(name: string): Promise<string> {
  const dir = join(root, `${name}-${++dirSeq}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Start a node that is cleaned up after the test. */
function start(argv: string[], opts: SpawnOptions = {}): NodeProcessType {
  const p = new NodeProcess(argv, opts);
  live.add(p);
  return p;
}

async function startHealthy(argv: string[], url: string, opts: SpawnOptions = {}) {
  const p = start(argv, opts);
  await p.waitHealthy(url);
  return p;
}

async function putOk(url: string, key: string, value: Uint8Array | string, headers: Record<string, string> = {}): Promise<string> {
  const res = await raw(url, 'PUT', kvPath(key), { headers, body: value });
  expect(res.status, `PUT ${key}: ${res.text()}`).toBe(204);
  return res.header('x-ringkv-context') as string;
}

/** Poll /v1/health until `p` exits; true if it ever answered 200. */
async function everHealthy(p: NodeProcessType, url: string): Promise<boolean> {
  let seen = false;
  while (p.running) {
    try {
      const r = await fetch(`${url}/v1/health`);
      if (r.status === 200) seen = true;
    } catch {
      // not listening (the expected case)
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return seen;
}

// ------------------------------------------------------------------------------------------

describe('ringkv node --help', () => {
  it('prints usage naming every flag and the RINGKV_<NAME> env vars, and exits 0', async () => {
    for (const help of ['--help', '-h']) {
      const res = await runNodeToExit([help]);
      expect(res.timedOut).toBe(false);
      expect(res.code, res.stderr).toBe(0);
      for (const flag of SPEC_FLAGS) expect(res.stdout, `--${flag} in help`).toContain(`--${flag}`);
      expect(res.stdout).toContain('RINGKV_');
    }
  });
});

describe('bad flags and values: one line naming the flag, exit code 2', () => {
  const cases: { name: string; argv: string[]; env?: Record<string, string>; flag: string }[] = [
    { name: 'missing --id', argv: ['--listen', '127.0.0.1:1'], flag: 'id' },
    { name: 'bad --id', argv: ['--id', 'bad id!'], flag: 'id' },
    { name: 'unknown flag', argv: ['--id', 'x', '--bogus', '1'], flag: 'bogus' },
    { name: 'flag without its value', argv: ['--id', 'x', '--zone'], flag: 'zone' },
    { name: '--listen not host:port', argv: ['--id', 'x', '--listen', 'nope'], flag: 'listen' },
    { name: '--listen port out of range', argv: ['--id', 'x', '--listen', '127.0.0.1:70000'], flag: 'listen' },
    { name: '--advertise unreachable wildcard', argv: ['--id', 'x', '--advertise', '0.0.0.0:8081'], flag: 'advertise' },
    { name: '--seeds with a bad entry', argv: ['--id', 'x', '--secret', SECRET, '--seeds', '127.0.0.1:1,oops'], flag: 'seeds' },
    { name: '--seeds without --secret', argv: ['--id', 'x', '--seeds', '127.0.0.1:1'], flag: 'secret' },
    { name: '--zone with spaces', argv: ['--id', 'x', '--zone', 'zone a'], flag: 'zone' },
    { name: '--weight zero', argv: ['--id', 'x', '--weight', '0'], flag: 'weight' },
    { name: '--weight not a number', argv: ['--id', 'x', '--weight', 'heavy'], flag: 'weight' },
    { name: '--n zero', argv: ['--id', 'x', '--n', '0'], flag: 'n' },
    { name: '--r above n', argv: ['--id', 'x', '--n', '3', '--r', '4'], flag: 'r' },
    { name: '--w not an integer', argv: ['--id', 'x', '--w', 'two'], flag: 'w' },
    { name: '--hinted-handoff not a boolean', argv: ['--id', 'x', '--hinted-handoff', 'maybe'], flag: 'hinted-handoff' },
    { name: '--anti-entropy-interval-ms junk', argv: ['--id', 'x', '--anti-entropy-interval-ms', '1s'], flag: 'anti-entropy-interval-ms' },
    { name: '--gossip-interval-ms negative', argv: ['--id', 'x', '--gossip-interval-ms', '-5'], flag: 'gossip-interval-ms' },
    { name: '--max-value-bytes zero', argv: ['--id', 'x', '--max-value-bytes', '0'], flag: 'max-value-bytes' },
    { name: 'RINGKV_WEIGHT junk', argv: ['--id', 'x'], env: { RINGKV_WEIGHT: 'abc' }, flag: 'weight' },
    { name: 'RINGKV_N zero', argv: [], env: { RINGKV_ID: 'x', RINGKV_N: '0' }, flag: 'n' },
    { name: 'RINGKV_LISTEN junk', argv: ['--id', 'x'], env: { RINGKV_LISTEN: 'localhost' }, flag: 'listen' },
  ];

  // Each case is its own short-lived process; run a few at a time.
  it.concurrent.for(cases)('$name', async ({ argv, env, flag }, { expect }) => {
    const dir = await freshDir('bad-flag');
    // A valid data dir and a free port, so that only the bad value can stop it.
    const base = ['--data', join(dir, 'data')];
    const res = await runNodeToExit([...base, ...argv], { ...(env ? { env } : {}), cwd: dir });
    expect(res.timedOut, 'it exited on its own').toBe(false);
    expect(res.code, `exit code; stderr: ${res.stderr}`).toBe(2);
    const msg = res.stderr.trim();
    expect(msg.split('\n'), 'one line').toHaveLength(1);
    const envName = `RINGKV_${flag.toUpperCase().replace(/-/g, '_')}`;
    expect(msg.includes(`--${flag}`) || (env !== undefined && msg.includes(envName)), `"${msg}" names --${flag}`).toBe(true);
    // It never got as far as opening the data directory.
    await expect(stat(join(dir, 'data'))).rejects.toThrow();
  });
});

describe('flags from RINGKV_* env vars (flags win over env)', () => {
  it('configures id, listen, advertise, data, zone, n, secret and max value size from the environment', async () => {
    const dir = await freshDir('env');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const data = join(dir, 'env-data');
    const env = {
      RINGKV_ID: 'envnode',
      RINGKV_LISTEN: `127.0.0.1:${port}`,
      RINGKV_ADVERTISE: `localhost:${port}`,
      RINGKV_DATA: data,
      RINGKV_ZONE: 'env-zone',
      RINGKV_N: '1',
      RINGKV_SECRET: SECRET,
      RINGKV_MAX_VALUE_BYTES: '16',
      RINGKV_HINTED_HANDOFF: 'false',
      RINGKV_GOSSIP_INTERVAL_MS: '250',
      RINGKV_ANTI_ENTROPY_INTERVAL_MS: '5000',
      RINGKV_WEIGHT: '2',
    };
    // The flag beats RINGKV_ZONE.
    await startHealthy(['--zone', 'flag-zone'], url, { env, cwd: dir });

    expect((await raw(url, 'GET', '/v1/health')).json()).toEqual({ status: 'ok', node: 'envnode' });
    const view = (await raw(url, 'GET', '/v1/cluster')).json<{ node: string; members: Record<string, unknown>[] }>();
    expect(view.node).toBe('envnode');
    expect(view.members).toHaveLength(1);
    expect(view.members[0]).toMatchObject({ id: 'envnode', address: `localhost:${port}`, zone: 'flag-zone', status: 'up' });

    // RINGKV_MAX_VALUE_BYTES=16
    await putOk(url, 'sixteen', 'x'.repeat(16));
    expect(errorOf(await raw(url, 'PUT', kvPath('seventeen'), { body: 'x'.repeat(17) }))).toEqual(errorShape(413, 'VALUE_TOO_LARGE'));
    // RINGKV_N=1: r and w accept 1..1 only.
    expect((await raw(url, 'GET', `${kvPath('sixteen')}?r=1`)).status).toBe(200);
    expect(errorOf(await raw(url, 'GET', `${kvPath('sixteen')}?r=2`))).toEqual(errorShape(400, 'BAD_QUERY'));
    // RINGKV_SECRET: internal routes take it (404 for an unknown route) and refuse anything else.
    const internal = (authorization?: string): Promise<RawResponse> =>
      raw(url, 'POST', '/internal/no-such-route', {
        headers: { 'content-type': 'application/octet-stream', ...(authorization ? { authorization } : {}) },
        body: '',
      });
    expect((await internal(`Bearer ${SECRET}`)).status).toBe(404);
    expect((await internal()).status).toBe(401);
    // RINGKV_DATA: LevelDB lives there.
    expect((await readdir(data)).length).toBeGreaterThan(0);
  });

  it('--data defaults to ./data/<id> under the working directory; SIGINT stops the node with exit code 0', async () => {
    const dir = await freshDir('default-data');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const p = await startHealthy(['--id', 'dflt', '--listen', `127.0.0.1:${port}`], url, { cwd: dir });
    await putOk(url, 'k', 'v');
    expect((await stat(join(dir, 'data', 'dflt'))).isDirectory()).toBe(true);
    expect((await readdir(join(dir, 'data', 'dflt'))).length).toBeGreaterThan(0);
    p.proc.kill('SIGINT');
    const exit = await p.exitWithin(10_000);
    expect(exit).toEqual({ code: 0, signal: null, timedOut: false });
  });
});

describe('a data directory that cannot be opened: exit non-zero with a clear message, never half-started', () => {
  it('the data path is a regular file', async () => {
    const dir = await freshDir('file-data');
    const file = join(dir, 'not-a-dir');
    await writeFile(file, 'I am a file');
    for (const data of [file, join(file, 'below-a-file')]) {
      const port = await freePort();
      const p = start(['--id', 'f1', '--listen', `127.0.0.1:${port}`, '--data', data]);
      const healthy = everHealthy(p, `http://127.0.0.1:${port}`);
      const exit = await p.exitWithin(15_000);
      expect(exit.timedOut).toBe(false);
      expect(exit.code, p.output()).not.toBe(0);
      expect(exit.code).not.toBeNull();
      expect(p.stderr).toContain(data);
      expect(p.stderr.trim().split('\n').at(-1)).toMatch(/data|store|director|open/i);
      expect(await healthy, 'it never answered /v1/health').toBe(false);
    }
  });

  it('the data directory is locked by another running node; the running node is unaffected', async () => {
    const dir = await freshDir('locked');
    const data = join(dir, 'shared');
    const port1 = await freePort();
    const url1 = `http://127.0.0.1:${port1}`;
    await startHealthy(['--id', 'l1', '--listen', `127.0.0.1:${port1}`, '--data', data], url1);
    await putOk(url1, 'owned', 'by the first node', { 'content-type': 'text/plain' });

    const port2 = await freePort();
    const second = start(['--id', 'l1', '--listen', `127.0.0.1:${port2}`, '--data', data]);
    const healthy = everHealthy(second, `http://127.0.0.1:${port2}`);
    const exit = await second.exitWithin(15_000);
    expect(exit.timedOut).toBe(false);
    expect(exit.code, second.output()).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(second.stderr).toContain(data);
    expect(second.stderr).toMatch(/lock/i);
    expect(await healthy).toBe(false);

    const still = await raw(url1, 'GET', kvPath('owned'));
    expect(still.status).toBe(200);
    expect(still.text()).toBe('by the first node');
    await putOk(url1, 'after', 'the second node gave up');
  });

  it('the listen address is taken: exit non-zero with a message, and the data directory is left usable', async () => {
    const dir = await freshDir('port-taken');
    const data = join(dir, 'd');
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    try {
      const res = await runNodeToExit(['--id', 'p1', '--listen', `127.0.0.1:${port}`, '--data', data]);
      expect(res.timedOut).toBe(false);
      expect(res.code, res.stderr).not.toBe(0);
      expect(res.code).not.toBeNull();
      expect(res.stderr).toMatch(/EADDRINUSE|in use|listen/i);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
    // It released the LevelDB lock on the way out.
    const port2 = await freePort();
    const url2 = `http://127.0.0.1:${port2}`;
    await startHealthy(['--id', 'p1', '--listen', `127.0.0.1:${port2}`, '--data', data], url2);
  });
});

describe('idle memory reclaim (needs --expose-gc, which the image and the bench pass)', () => {
  const runtime = JSON.parse(readFileSync(join(import.meta.dirname, '../../scripts/runtime.json'), 'utf8')) as { nodeFlags: string[] };
  const idleCollections = async (url: string): Promise<number> => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const sample = parseExposition(text).samples.find((x) => x.name === 'ringkv_idle_collections_total');
    if (sample === undefined) throw new Error('ringkv_idle_collections_total is not exported');
    return sample.value;
  };

  // Whether a real node's burst of garbage is still there at its next quiet check depends on
  // V8's own collections, i.e. on timing and load: a test that waited for the node to collect
  // failed in CI twice (sessions 5 and 6). The collection itself is tested with the real
  // probes, deterministically, in idle-reclaim-probes.test.ts; here, that the node turns it on.
  it('with the runtime flags the node runs the idle reclaim and exports its counter', async () => {
    expect(runtime.nodeFlags).toContain('--expose-gc');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const p = await startHealthy(['--id', 'gc1', '--listen', `127.0.0.1:${port}`, '--data', join(await freshDir('gc'), 'd')], url, {
      nodeFlags: runtime.nodeFlags,
    });
    expect(await idleCollections(url)).toBe(0);
    // The "off" line would come before the node's "started" line.
    await waitFor('the started line', async () => p.output().includes('ringkv node started'), 10_000);
    expect(p.output()).not.toContain('idle memory reclaim is off');
  });

  it('without --expose-gc the node says the reclaim is off, and exports the counter at 0', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const p = await startHealthy(['--id', 'gc2', '--listen', `127.0.0.1:${port}`, '--data', join(await freshDir('nogc'), 'd')], url);
    await waitFor('the startup log line', async () => p.output().includes('idle memory reclaim is off'), 10_000);
    expect(await idleCollections(url)).toBe(0);
  });
});

describe('runtime environment (scripts/runtime.json; the image and the bench set the same)', () => {
  const runtime = JSON.parse(readFileSync(join(import.meta.dirname, '../../scripts/runtime.json'), 'utf8')) as {
    nodeFlags: string[];
    env: Record<string, string>;
  };

  // A library LD_PRELOAD cannot find is skipped with one stderr line and the node runs on
  // glibc malloc: the setting would look applied and do nothing. .ci/run installs it
  // (Debian package libjemalloc2); so must any machine that runs `npm test`.
  it('the node runs on the preloaded allocator', async () => {
    const library = runtime.env.LD_PRELOAD;
    expect(library, 'runtime.json preloads an allocator').toBeDefined();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const p = await startHealthy(['--id', 'je1', '--listen', `127.0.0.1:${port}`, '--data', join(await freshDir('alloc'), 'd')], url, {
      nodeFlags: runtime.nodeFlags,
      env: runtime.env,
    });
    const maps = await readFile(`/proc/${p.proc.pid}/maps`, 'utf8');
    expect(maps).toContain(`/${library?.split('/').pop()}`);
    expect(p.stderr).not.toContain('cannot be preloaded');
    // jemalloc names a MALLOC_CONF setting it does not accept on stderr, and goes on.
    expect(p.stderr).not.toContain('<jemalloc>');
  });
});

describe('shutdown and restart', () => {
  // A request that reaches a keep-alive socket as the server closes it is reset, and its
  // client cannot tell whether it was applied. So a stopping node keeps refusing with 503
  // while requests keep coming, and closes only after a quiet spell (300 ms; at most 3 s).
  it('a stopping node answers 503 for as long as clients keep sending, then exits once they stop', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const p = await startHealthy(['--id', 'q1', '--listen', `127.0.0.1:${port}`, '--data', join(await freshDir('quiet'), 'd')], url);
    p.proc.kill('SIGTERM');
    // A request every ~20 ms for 1.5 s: far more than the node's own stop takes, and never
    // 300 ms apart. Without the quiet wait the server closed after ~0.3-0.5 s: refused connections.
    const statuses = new Map<string, number>();
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      const got = await fetch(`${url}/v1/kv/q`, { signal: AbortSignal.timeout(2000) }).then(
        async (r) => {
          await r.arrayBuffer();
          return String(r.status);
        },
        (err: unknown) => `error ${String((err as { cause?: unknown }).cause ?? err)}`,
      );
      statuses.set(got, (statuses.get(got) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect([...statuses.keys()].filter((k) => k !== '503' && k !== '404')).toEqual([]);
    expect(statuses.get('503') ?? 0).toBeGreaterThan(10);
    const exit = await p.exitWithin(10_000);
    expect(exit, p.output().slice(-2000)).toEqual({ code: 0, signal: null, timedOut: false });
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: exits 0 promptly, and a restart on the same data directory has everything`, async () => {
      const dir = await freshDir(signal);
      const data = join(dir, 'd');
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const argv = ['--id', 'g1', '--listen', `127.0.0.1:${port}`, '--data', data, '--secret', SECRET];
      const p = await startHealthy(argv, url);
      const value = binaryValue(3000);
      await putOk(url, 'graceful', value, { 'content-type': 'application/x-test' });
      // Failed auth attempts must not bring the secret into the log either.
      expect((await raw(url, 'POST', '/internal/replica-write', { headers: { authorization: `Bearer ${SECRET}x` } })).status).toBe(401);
      expect((await raw(url, 'POST', '/v1/cluster/leave', { headers: { authorization: `Bearer ${SECRET.slice(1)}` } })).status).toBe(401);

      p.proc.kill(signal);
      const exit = await p.exitWithin(10_000);
      expect(exit, p.output().slice(-2000)).toEqual({ code: 0, signal: null, timedOut: false });
      expect(p.output()).not.toContain(SECRET);

      const again = await startHealthy(argv, url);
      const got = await raw(url, 'GET', kvPath('graceful'));
      expect(got.status).toBe(200);
      expect(got.header('content-type')).toBe('application/x-test');
      expect(Buffer.compare(got.body, value)).toBe(0);
      expect(again.output()).not.toContain(SECRET);
    });
  }

  // fastify's close() waits for open connections, and its default only closes idle keep-alive
  // sockets; a client that never finishes its request must not keep a stopping node alive
  // (src/node.ts cuts every connection after a 2 s grace).
  it('SIGTERM exits promptly even while clients hold connections with unfinished requests', async () => {
    const variants = ['', 'GET /v1/health HTTP/1.1\r\nHost: x\r\n', 'PUT /v1/kv/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc'];
    const results = await Promise.all(
      variants.map(async (partial, i) => {
        const dir = await freshDir(`slow-client-${i}`);
        const port = await freePort();
        const url = `http://127.0.0.1:${port}`;
        const p = await startHealthy(['--id', `s${i}`, '--listen', `127.0.0.1:${port}`, '--data', join(dir, 'd')], url);
        const socket = connect(port, '127.0.0.1');
        socket.on('error', () => undefined);
        try {
          await new Promise<void>((r) => socket.once('connect', () => r()));
          if (partial !== '') socket.write(partial);
          // Let the server see the connection (and the bytes) before the signal.
          await waitFor('the server to see the connection', async () => (await raw(url, 'GET', '/v1/health')).status === 200);
          p.proc.kill('SIGTERM');
          return await p.exitWithin(5_000);
        } finally {
          socket.destroy();
        }
      }),
    );
    for (const r of results) expect(r).toEqual({ code: 0, signal: null, timedOut: false });
  });

  it('after kill -9 a restart on the same data directory has every acknowledged write, siblings and deletes included', async () => {
    const dir = await freshDir('kill9');
    const data = join(dir, 'd');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const argv = ['--id', 'k9', '--listen', `127.0.0.1:${port}`, '--data', data];
    const first = await startHealthy(argv, url);

    const values = new Map<string, Buffer>();
    const keys = Array.from({ length: 120 }, (_, i) => `crash:${i}`);
    // Written concurrently in batches; each is acknowledged (204) before the kill.
    for (let i = 0; i < keys.length; i += 20) {
      await Promise.all(
        keys.slice(i, i + 20).map(async (k, j) => {
          const v = Buffer.concat([Buffer.from(`${k}:`), binaryValue(50 + ((i + j) % 400))]);
          await putOk(url, k, v, { 'content-type': 'application/octet-stream' });
          values.set(k, v);
        }),
      );
    }
    await putOk(url, 'crash:siblings', 'left', { 'content-type': 'text/plain' });
    await putOk(url, 'crash:siblings', 'right', { 'content-type': 'text/plain' });
    const doomedCtx = await putOk(url, 'crash:deleted', 'gone soon');
    expect((await raw(url, 'DELETE', kvPath('crash:deleted'), { headers: { 'x-ringkv-context': doomedCtx } })).status).toBe(204);

    const exit = await first.kill('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');

    await startHealthy(argv, url);
    for (const [k, v] of values) {
      const got = await raw(url, 'GET', kvPath(k));
      expect(got.status, k).toBe(200);
      expect(Buffer.compare(got.body, v), k).toBe(0);
    }
    const sib = await raw(url, 'GET', kvPath('crash:siblings'));
    expect(sib.status).toBe(300);
    const body = sib.json<{ context: string; siblings: { value: string }[] }>();
    expect(body.siblings.map((s) => Buffer.from(s.value, 'base64').toString()).sort()).toEqual(['left', 'right']);
    const del = await raw(url, 'GET', kvPath('crash:deleted'));
    expect(errorOf(del)).toEqual(errorShape(404, 'NOT_FOUND'));
    expect(del.header('x-ringkv-context')).toBeTruthy();

    // Versions minted after the restart never collide with ones from before it: a blind write
    // is a new sibling, and a write with the pre-crash context resolves what it covers.
    await putOk(url, 'crash:0', 'after restart');
    const both = await raw(url, 'GET', kvPath('crash:0'));
    expect(both.status).toBe(300);
    await putOk(url, 'crash:siblings', 'resolved', { 'x-ringkv-context': body.context });
    expect((await raw(url, 'GET', kvPath('crash:siblings'))).text()).toBe('resolved');
  });
});

describe('POST /v1/cluster/leave', () => {
  it('the node reports leaving, then shuts itself down with exit code 0; the other node keeps serving its data', async () => {
    const dir = await freshDir('leave');
    const [pa, pb] = [await freePort(), await freePort()];
    const [a, b] = [`127.0.0.1:${pa}`, `127.0.0.1:${pb}`];
    const common = ['--seeds', a, '--secret', SECRET, '--gossip-interval-ms', '200'];
    await startHealthy(['--id', 'la', '--listen', a, '--data', join(dir, 'a'), ...common], `http://${a}`);
    const leaver = await startHealthy(['--id', 'lb', '--listen', b, '--data', join(dir, 'b'), ...common], `http://${b}`);
    await waitFor(
      'both nodes to see each other up',
      async () => {
        for (const u of [a, b]) {
          const v = (await raw(`http://${u}`, 'GET', '/v1/cluster')).json<{ members: { id: string; status: string }[] }>();
          if (!['la', 'lb'].every((id) => v.members.some((m) => m.id === id && m.status === 'up'))) return false;
        }
        return true;
      },
      30_000,
      200,
    );
    await waitFor('a w=all write through lb', async () => (await raw(`http://${b}`, 'PUT', kvPath('kept', 'w=all'), { body: 'kept after leave' })).status === 204, 30_000, 200);

    const res = await raw(`http://${b}`, 'POST', '/v1/cluster/leave', { headers: { authorization: `Bearer ${SECRET}` } });
    expect(res.status, res.text()).toBe(202);
    const view = await raw(`http://${b}`, 'GET', '/v1/cluster').catch(() => undefined);
    if (view?.status === 200) {
      const me = view.json<{ members: { id: string; status: string }[] }>().members.find((m) => m.id === 'lb');
      expect(me?.status).toBe('leaving');
    }
    const exit = await leaver.exitWithin(30_000);
    expect(exit, leaver.output().slice(-2000)).toEqual({ code: 0, signal: null, timedOut: false });
    expect(leaver.output()).not.toContain(SECRET);
    // The leaver may be gone before /v1/cluster is asked (above), so its own log is the record
    // that it went through `leaving`, the state /v1/cluster reports, before it left.
    const states = leaver
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; from?: string; to?: string })
      .filter((l) => l.msg === 'own membership state changed')
      .map((l) => `${l.from}>${l.to}`);
    expect(states.at(-1)).toBe('active>leaving');
    expect(leaver.output()).toContain('every receiver has its data; leaving the cluster');

    const got = await raw(`http://${a}`, 'GET', kvPath('kept', 'r=all'));
    expect(got.status).toBe(200);
    expect(got.text()).toBe('kept after leave');
  });
});
