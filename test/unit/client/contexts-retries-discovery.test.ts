/**
 * Behaviours docs/client.md promises that a second review of the SDK found broken: a value
 * read without its context, update() overriding the client's retryUnsafe, a blind write that
 * timed out before it was ever sent, discovery adopting addresses the client cannot reach,
 * and option types that reject SPEC's own example under `exactOptionalPropertyTypes`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Client, type ClientOptions, ProtocolError, QuorumError, resolvers } from '../../../src/client/index.js';
import { ManualTime, seededRandom } from '../../../src/runtime/index.js';
import { caught, deadUrl, encodeContext, errorBody, FakeV1, startBlackHole } from './fake-v1.js';

const dec = new TextDecoder();

let fake: FakeV1;
const clients: Client[] = [];
const cleanups: (() => Promise<void>)[] = [];

function client(opts: Partial<ClientOptions> = {}): Client {
  const c = new Client({ nodes: [fake.url], random: seededRandom(11), backoff: { baseMs: 1, maxMs: 5 }, ...opts });
  clients.push(c);
  return c;
}

const host = (url: string): string => url.replace('http://', '');

beforeEach(async () => {
  fake = await FakeV1.start();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(cleanups.splice(0).map((f) => f()));
  await fake.close();
});

describe('a value read without its context', () => {
  it('is a ProtocolError for a 200, and update() writes nothing (no blind sibling)', async () => {
    fake.seed('k', 'v1');
    // A node (or a proxy in front of it) that drops X-Ringkv-Context from a 200.
    fake.intercept = (hit, reply) => {
      if (hit.method !== 'GET') return false;
      void reply.code(200).header('content-type', 'text/plain').send('v1');
      return true;
    };
    const kv = client();
    expect(await caught(kv.get('k'))).toBeInstanceOf(ProtocolError);
    expect(await caught(kv.update('k', (cur) => `${dec.decode(cur)}+1`))).toBeInstanceOf(ProtocolError);
    expect(fake.hitsFor('PUT')).toHaveLength(0);
    expect(fake.values('k')).toEqual(['v1']);
  });

  it('is a ProtocolError for a 300 with siblings and no context in body or header', async () => {
    fake.seed('k', '["a"]');
    fake.seed('k', '["b"]');
    fake.intercept = (hit, reply) => {
      if (hit.method !== 'GET') return false;
      const siblings = fake.values('k').map((v) => ({
        value: Buffer.from(v).toString('base64'),
        contentType: 'application/json',
        lastModified: new Date(0).toISOString(),
      }));
      void reply.code(300).type('application/json').send(JSON.stringify({ siblings }));
      return true;
    };
    const kv = client();
    expect(await caught(kv.get('k'))).toBeInstanceOf(ProtocolError);
    expect(await caught(kv.update('k', () => '["c"]'))).toBeInstanceOf(ProtocolError);
    expect(fake.hitsFor('PUT')).toHaveLength(0);
    expect(fake.values('k')).toEqual(['["a"]', '["b"]']);
  });

  it("writes with a 300's body context when its header disagrees (the body names what was read)", async () => {
    fake.seed('k', '["a"]');
    fake.seed('k', '["b"]');
    let bodyContext = '';
    fake.intercept = (hit, reply) => {
      if (hit.method !== 'GET') return false;
      const versions = fake.data.get('k') ?? [];
      bodyContext = encodeContext(versions.map((v) => v.dot));
      const siblings = versions.map((v) => ({
        value: v.value.toString('base64'),
        contentType: 'application/json',
        lastModified: new Date(v.lastModified).toISOString(),
      }));
      // A header that claims more than the body shows (dot 99 was never read).
      void reply
        .code(300)
        .type('application/json')
        .header('X-Ringkv-Context', encodeContext([...versions.map((v) => v.dot), 99]))
        .send(JSON.stringify({ context: bodyContext, siblings }));
      return true;
    };
    await client().update('k', () => '["a","b","c"]', { resolve: resolvers.jsonSetUnion });
    expect(fake.hitsFor('PUT')[0]!.headers['x-ringkv-context']).toBe(bodyContext);
    expect(fake.values('k')).toEqual(['["a","b","c"]']);
  });

  it('is still fine for a missing key, which has no context to give', async () => {
    expect(await client().get('nope')).toEqual({ found: false, siblings: [] });
  });
});

describe('update() and the client-wide retryUnsafe', () => {
  it('does not retry its write after an unknown outcome when the client says retryUnsafe: false', async () => {
    fake.seed('k', 'v1');
    fake.intercept = (hit, reply) => {
      if (hit.method !== 'PUT') return false;
      void reply
        .code(503)
        .type('application/json')
        .send(errorBody('QUORUM_FAILED', 'write quorum not met: 1 of 2', { answered: 1, needed: 2 }));
      return true;
    };
    const err = await caught(client({ retryUnsafe: false, retries: 3 }).update('k', () => 'v2'));
    expect(err).toBeInstanceOf(QuorumError);
    expect(fake.hitsFor('PUT')).toHaveLength(1);
  });

  it('still retries by default, and when the call asks for it over the client', async () => {
    let fail = 1;
    fake.intercept = (hit, reply) => {
      if (hit.method !== 'PUT' || fail-- <= 0) return false;
      void reply.code(503).type('application/json').send(errorBody('QUORUM_FAILED', 'not met', { answered: 1, needed: 2 }));
      return true;
    };
    await client({ retries: 3 }).update('a', () => 'v');
    expect(fake.hitsFor('PUT')).toHaveLength(2);
    fail = 1;
    await client({ retries: 3, retryUnsafe: false }).update('b', () => 'v', { retryUnsafe: true });
    expect(fake.hitsFor('PUT')).toHaveLength(4);
  });
});


describe('an attempt that times out before its request was sent', () => {
  it('lets a blind write fail over when it was still queued for a busy connection', async () => {
    // One connection per node. A read hangs on the silent node and holds its connection;
    // a blind write to that node queues behind it and its attempt times out there. It never
    // left the client, so it must go on to the next node, not end as "outcome unknown".
    const silent = await startBlackHole();
    cleanups.push(silent.close);
    const time = new ManualTime();
    const kv = client({
      nodes: [silent.url, fake.url],
      connectionsPerNode: 1,
      attemptTimeoutMs: 1_000,
      timeoutMs: 60_000,
      retries: 3,
      breaker: false,
      clock: time,
      timers: time,
      // Round-robin starts at the silent node; no backoff sleeps.
      random: { ...seededRandom(1), int: () => 0, next: () => 0 },
    });
    const hanging = kv.get('held');
    await vi.waitFor(() => expect(silent.received()).toContain('GET /v1/kv/held'));
    // The round-robin moves on per call: this read starts at the fake, the write at the silent node.
    await kv.get('other');
    const write = kv.put('k', 'v');
    // Both attempts on the silent node run out at once; the write's was never handed to a
    // connection (the read's only goes away as this step ends).
    await time.advance(1_000);
    const { context } = await write;
    expect(context).toMatch(/^c1\./);
    expect(fake.values('k')).toEqual(['v']);
    await hanging;
    // The silent node never saw the write, not even later on a fresh connection.
    await new Promise((r) => setTimeout(r, 100));
    expect(silent.received()).not.toContain('PUT');
  });
});

describe('discovery and addresses the client cannot reach', () => {
  it('keeps the working nodes when every member advertises an address out of reach', async () => {
    // As with docker-compose, where members advertise n1:8081 ... to each other and the
    // client on the host knows them as 127.0.0.1:8081 ...: the advertised address is dead here.
    const unreachable = await deadUrl();
    fake.cluster = { members: [{ id: 'n1', address: host(unreachable), status: 'up' }] };
    fake.seed('k', 'v');
    const kv = client();
    expect(await kv.refreshNodes()).toEqual([fake.url]);
    expect((await kv.get('k')).found).toBe(true);
  });

  it('adopts the members that answer and leaves out those that do not', async () => {
    const other = await FakeV1.start();
    cleanups.push(() => other.close());
    const unreachable = await deadUrl();
    fake.cluster = {
      members: [
        { id: 'a', address: host(fake.url), status: 'up' },
        { id: 'b', address: host(other.url), status: 'up' },
        { id: 'c', address: host(unreachable), status: 'up' },
      ],
    };
    const kv = client();
    expect(await kv.refreshNodes()).toEqual([fake.url, other.url].sort());
  });
});

describe('option types under exactOptionalPropertyTypes', () => {
  it("compile SPEC's example, which passes a read's possibly-undefined context straight on", () => {
    // A consumer project with `exactOptionalPropertyTypes: true` (a common strict setting)
    // must be able to write SPEC §3's `{ context: got.context }` and the like.
    const dir = mkdtempSync(join(tmpdir(), 'ringkv-types-'));
    try {
      const entry = resolve('src/client/index.js');
      const file = join(dir, 'consumer.ts');
      writeFileSync(
        file,
        `import { Client, resolvers, type Sibling } from ${JSON.stringify(entry)};
export async function example(r: 'one' | undefined, signal: AbortSignal | undefined): Promise<void> {
  const kv = new Client({ nodes: ['http://127.0.0.1:8081'], timeoutMs: undefined, breaker: undefined });
  const got = await kv.get('cart:42', { r, signal });
  await kv.put('cart:42', 'bytesOrString', { context: got.context, contentType: undefined });
  await kv.update('cart:42', (current: Uint8Array | undefined) => current ?? 'next', {
    resolve: (siblings: Sibling[]) => resolvers.lastWriterWins(siblings),
    w: undefined,
  });
  await kv.delete('cart:42', { context: got.context, retryUnsafe: undefined });
}
`,
      );
      const program = ts.createProgram([file], {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        lib: ['lib.es2024.d.ts'],
        types: ['node'],
        typeRoots: [resolve('node_modules/@types')],
        strict: true,
        exactOptionalPropertyTypes: true,
        skipLibCheck: true,
        noEmit: true,
      });
      const problems = ts
        .getPreEmitDiagnostics(program)
        .filter((d) => d.file?.fileName === file)
        .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      expect(problems).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
