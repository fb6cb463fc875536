import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Client, type ClientOptions, ResolveError, resolvers } from '../../../src/client/index.js';
import { seededRandom } from '../../../src/runtime/index.js';
import { FakeV1 } from './fake-v1.js';

const dec = new TextDecoder();

let fake: FakeV1;
const clients: Client[] = [];

function client(opts: Partial<ClientOptions> = {}): Client {
  const c = new Client({ nodes: [fake.url], random: seededRandom(3), backoff: { baseMs: 1, maxMs: 5 }, ...opts });
  clients.push(c);
  return c;
}

/** Adds `item` to the JSON array held in `current` (a new key starts empty). */
const add =
  (item: string) =>
  (current: Uint8Array | undefined): string =>
    JSON.stringify([...(current ? (JSON.parse(dec.decode(current)) as string[]) : []), item]);

beforeAll(async () => {
  fake = await FakeV1.start();
});

afterEach(() => {
  fake.intercept = undefined;
  fake.delay = undefined;
});

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await fake.close();
});

describe('update', () => {
  it('passes undefined for a missing key and writes without a context', async () => {
    let seen: Uint8Array | undefined | 'unset' = 'unset';
    const res = await client().update('u1', (cur) => {
      seen = cur;
      return 'first';
    });
    expect(seen).toBeUndefined();
    expect(dec.decode(res.value)).toBe('first');
    expect(res.context).toMatch(/^c1\./);
    expect(fake.hitsFor('PUT').at(-1)!.headers['x-ringkv-context']).toBeUndefined();
    expect(fake.values('u1')).toEqual(['first']);
  });

  it("writes over a single value with the read's context", async () => {
    const kv = client();
    await kv.put('u2', 'one', { contentType: 'text/x-count' });
    const res = await kv.update('u2', (cur) => `${dec.decode(cur)}+1`);
    expect(dec.decode(res.value)).toBe('one+1');
    expect(fake.values('u2')).toEqual(['one+1']);
    // The content type of what was read is kept.
    expect(fake.data.get('u2')![0]!.contentType).toBe('text/x-count');
  });

  it('resolves siblings with lastWriterWins by default and replaces them all', async () => {
    fake.seed('u3', 'older', 'text/a', Date.UTC(2024, 0, 1));
    fake.seed('u3', 'newer', 'text/b', Date.UTC(2024, 0, 2));
    let seen = '';
    await client().update('u3', (cur) => {
      seen = dec.decode(cur);
      return `${seen}!`;
    });
    expect(seen).toBe('newer');
    expect(fake.values('u3')).toEqual(['newer!']);
    expect(fake.data.get('u3')![0]!.contentType).toBe('text/b');
  });

  it('merges siblings with the given resolver', async () => {
    fake.seed('u4', '["a","b"]', 'application/json');
    fake.seed('u4', '["c"]', 'application/json');
    await client().update('u4', add('d'), { resolve: resolvers.jsonSetUnion });
    expect(fake.values('u4')).toEqual(['["a","b","c","d"]']);
  });

  it('writes nothing when the resolver throws', async () => {
    fake.seed('u5', '["a"]');
    fake.seed('u5', 'not json');
    const before = fake.hitsFor('PUT').length;
    await expect(client().update('u5', add('x'), { resolve: resolvers.jsonSetUnion })).rejects.toBeInstanceOf(ResolveError);
    expect(fake.hitsFor('PUT')).toHaveLength(before);
  });

  it('never loses an element when concurrent writers race (jsonSetUnion, property)', async () => {
    const writers = Array.from({ length: 5 }, () => client());
    const siblingReadsBefore = fake.siblingReads;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 5 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 64, maxLength: 64 }),
        async (nWriters, perWriter, delays) => {
          const key = `race-${run++}`;
          let i = 0;
          // Random per-request pauses shuffle reads and writes from different writers.
          fake.delay = () => delays[i++ % delays.length]!;
          const expected: string[] = [];
          await Promise.all(
            writers.slice(0, nWriters).map(async (kv, w) => {
              for (let j = 0; j < perWriter; j++) {
                const item = `w${w}-${j}`;
                expected.push(item);
                await kv.update(key, add(item), { resolve: resolvers.jsonSetUnion });
              }
            }),
          );
          fake.delay = undefined;
          const got = await writers[0]!.get(key);
          const merged =
            got.siblings.length === 1 ? dec.decode(got.siblings[0]!.value) : resolvers.jsonSetUnion(got.siblings);
          expect(new Set(JSON.parse(merged) as string[])).toEqual(new Set(expected));
        },
      ),
      { numRuns: 25 },
    );
    // The races were real: updates did read concurrent siblings and had to merge them.
    expect(fake.siblingReads - siblingReadsBefore).toBeGreaterThan(10);
  });
});
