/**
 * The SDK and the CLI against a real 3-node cluster (built `dist/`, one process per node).
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, resolvers } from '../../src/client/index.js';
import { CLI, startCluster, type TestCluster } from '../helpers/cluster.js';

const dec = new TextDecoder();

let cluster: TestCluster;
const clients: Client[] = [];

function client(nodes: string[]): Client {
  const c = new Client({ nodes, timeoutMs: 15_000 });
  clients.push(c);
  return c;
}

/** Adds `item` to the JSON array in `current` (a missing key starts empty). */
const add =
  (item: string) =>
  (current: Uint8Array | undefined): string =>
    JSON.stringify([...(current ? (JSON.parse(dec.decode(current)) as string[]) : []), item]);

/** The set a key holds once its siblings are merged. */
async function readSet(kv: Client, key: string, r: 'all' | 'quorum' = 'all'): Promise<Set<string>> {
  const got = await kv.get(key, { r });
  if (!got.found) return new Set();
  const json = got.siblings.length === 1 ? dec.decode(got.siblings[0]!.value) : resolvers.jsonSetUnion(got.siblings);
  return new Set(JSON.parse(json) as string[]);
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3 });
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await cluster?.stop();
});

describe('client SDK on a real cluster', () => {
  it('five concurrent updaters through different nodes lose no element (jsonSetUnion)', async () => {
    const key = 'cart:concurrent';
    const urls = cluster.urls;
    const writers = Array.from({ length: 5 }, (_, i) => {
      // Each writer prefers a different node first; the others are for failover.
      const first = urls[i % urls.length]!;
      return client([first, ...urls.filter((u) => u !== first)]);
    });
    const expected: string[] = [];
    await Promise.all(
      writers.map(async (kv, w) => {
        for (let j = 0; j < 6; j++) {
          const item = `writer${w}-item${j}`;
          expected.push(item);
          await kv.update(key, add(item), { resolve: resolvers.jsonSetUnion, contentType: 'application/json' });
        }
      }),
    );
    const reader = client(urls);
    expect(await readSet(reader, key)).toEqual(new Set(expected));
    // One more update merges every sibling into a single value.
    await reader.update(key, add('final'), { resolve: resolvers.jsonSetUnion });
    const got = await reader.get(key, { r: 'all' });
    expect(got.siblings).toHaveLength(1);
    expect(new Set(JSON.parse(dec.decode(got.siblings[0]!.value)) as string[])).toEqual(new Set([...expected, 'final']));
  });

  it('the CLI reads what the SDK wrote', async () => {
    const kv = client(cluster.urls);
    await kv.put('cli:greeting', 'written by the SDK', { contentType: 'text/plain' });
    const got = await runCli(['get', 'cli:greeting', '--node', cluster.urls[1]!]);
    expect(got.code).toBe(0);
    expect(got.stdout).toBe('written by the SDK');
    expect(got.stderr).toMatch(/^context: \S+\n$/);

    const missing = await runCli(['get', 'cli:never-written', '--node', cluster.urls[2]!]);
    expect(missing.code).toBe(1);

    // And the other way round: the SDK reads what the CLI wrote, and sees a blind write as a sibling.
    expect((await runCli(['put', 'cli:greeting', 'written by the CLI', '--node', cluster.urls[0]!])).code).toBe(0);
    const both = await kv.get('cli:greeting', { r: 'all' });
    expect(both.siblings.map((s) => dec.decode(s.value)).sort()).toEqual(['written by the CLI', 'written by the SDK']);
    const listed = await runCli(['get', 'cli:greeting', '--node', cluster.urls[0]!]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^--- sibling 1\/2 \(/);

    const status = await runCli(['status', '--node', cluster.urls[0]!]);
    expect(status.code).toBe(0);
    for (const n of cluster.nodes) expect(status.stdout).toContain(n.id);
  });

  it('a client whose first node is dead still works', async () => {
    const [a, b, c] = cluster.nodes;
    await c!.kill('SIGKILL');
    const kv = client([c!.url, a!.url, b!.url]);
    // Rotation makes every node the first choice of some call, the dead one included.
    for (let i = 0; i < 6; i++) {
      const { context } = await kv.put(`dead-first:${i}`, `v${i}`);
      expect(context).not.toBe('');
      const got = await kv.get(`dead-first:${i}`);
      expect(got.found).toBe(true);
      expect(dec.decode(got.siblings[0]!.value)).toBe(`v${i}`);
    }
    await kv.update('dead-first:set', add('x'), { resolve: resolvers.jsonSetUnion });
    expect(await readSet(client([c!.url, a!.url]), 'dead-first:set', 'quorum')).toEqual(new Set(['x']));
  });
});
