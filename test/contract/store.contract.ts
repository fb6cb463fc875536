/**
 * The Store contract: every Store implementation runs this suite (see store.test.ts).
 * It tests behaviour through the interface only.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/runtime/index.js';
import { compareBytes } from '../../src/storage/keys.js';
import { type BatchOp, NAMESPACES, type RangeOptions, type Store } from '../../src/storage/store.js';

/** What a factory hands the suite: a fresh, not yet opened store. */
export interface StoreFixture {
  readonly store: Store;
  /** Whether data written before close() is readable after open() again. */
  readonly persistent: boolean;
  /** Release everything the fixture made (temp directories...); runs after store.close(). */
  cleanup(): Promise<void>;
}

const b = (...bytes: number[]): Uint8Array => Uint8Array.from(bytes);
const s = (text: string): Uint8Array => new TextEncoder().encode(text);
const hex = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const closedMessage = /store is not open/;

export function storeContract(name: string, make: () => Promise<StoreFixture>): void {
  describe(`Store contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;

    beforeEach(async () => {
      fixture = await make();
      store = fixture.store;
      await store.open();
    });

    afterEach(async () => {
      await store.close();
      await fixture.cleanup();
    });

    describe('single keys', () => {
      it('get of a missing key is undefined', async () => {
        expect(await store.get('obj', s('nope'))).toBeUndefined();
      });

      it('put then get returns the bytes as a plain Uint8Array', async () => {
        await store.put('obj', s('k'), b(0, 1, 2, 255));
        const got = await store.get('obj', s('k'));
        expect(got).toBeInstanceOf(Uint8Array);
        expect(Object.getPrototypeOf(got)).toBe(Uint8Array.prototype);
        expect(hex(got)).toBe('000102ff');
      });

      it('put overwrites', async () => {
        await store.put('obj', s('k'), s('one'));
        await store.put('obj', s('k'), s('two'));
        expect(hex(await store.get('obj', s('k')))).toBe(hex(s('two')));
      });

      it('empty keys and empty values are stored', async () => {
        await store.put('meta', b(), b());
        await store.put('meta', s('e'), b());
        expect(hex(await store.get('meta', b()))).toBe('');
        expect(hex(await store.get('meta', s('e')))).toBe('');
      });

      it('del removes the key; del of a missing key resolves', async () => {
        await store.put('obj', s('k'), s('v'));
        await store.del('obj', s('k'));
        expect(await store.get('obj', s('k'))).toBeUndefined();
        await expect(store.del('obj', s('never'))).resolves.toBeUndefined();
      });

      it('keys are binary: 0x00 and 0xff bytes, and a key that is a prefix of another', async () => {
        const keys = [b(0), b(0, 0), b(0xff), b(0xff, 0), b(1, 0, 1), b(1)];
        for (const [i, key] of keys.entries()) await store.put('obj', key, b(i));
        for (const [i, key] of keys.entries()) expect(hex(await store.get('obj', key))).toBe(hex(b(i)));
      });

      it('getMany returns values in the order asked, undefined for missing, duplicates allowed', async () => {
        await store.put('obj', s('a'), s('A'));
        await store.put('obj', s('c'), s('C'));
        const got = await store.getMany('obj', [s('c'), s('b'), s('a'), s('c')]);
        expect(got.map(hex)).toEqual([hex(s('C')), undefined, hex(s('A')), hex(s('C'))]);
        expect(await store.getMany('obj', [])).toEqual([]);
      });

      it('many concurrent writes all land', async () => {
        const keys = Array.from({ length: 300 }, (_, i) => s(`k${i}`));
        await Promise.all(keys.map((key, i) => store.put('obj', key, s(`v${i}`))));
        const got = await store.getMany('obj', keys);
        expect(got.map(hex)).toEqual(keys.map((_, i) => hex(s(`v${i}`))));
      });
    });

    describe('isolation from callers', () => {
      it('mutating a value after put, or a value read back, does not change the store', async () => {
        const value = s('abc');
        await store.put('obj', s('k'), value);
        value[0] = 0x7a;
        const read = await store.get('obj', s('k'));
        read![1] = 0x7a;
        const [many] = await store.getMany('obj', [s('k')]);
        many![2] = 0x7a;
        const [entry] = await collect(store.entries('obj'));
        entry![0][0] = 0x7a;
        entry![1][0] = 0x7a;
        expect(hex(await store.get('obj', s('k')))).toBe(hex(s('abc')));
        expect((await collect(store.keys('obj'))).map(hex)).toEqual([hex(s('k'))]);
      });

      it('getShared reads what get reads, and what it returned stays as it was after later writes', async () => {
        expect(await store.getShared('obj', s('k'))).toBeUndefined();
        await store.put('obj', s('k'), s('one'));
        const first = await store.getShared('obj', s('k'));
        const again = await store.getShared('obj', s('k'));
        expect(hex(first)).toBe(hex(s('one')));
        expect(hex(again)).toBe(hex(s('one')));
        await store.put('obj', s('k'), s('two'));
        expect(hex(await store.getShared('obj', s('k')))).toBe(hex(s('two')));
        await store.del('obj', s('k'));
        expect(await store.getShared('obj', s('k'))).toBeUndefined();
        // Bytes handed out earlier are never rewritten by the store.
        expect(hex(first)).toBe(hex(s('one')));
        expect(hex(again)).toBe(hex(s('one')));
        await store.put('meta', s('m'), s('meta'));
        expect(hex(await store.getShared('meta', s('m')))).toBe(hex(s('meta')));
      });

      it('a value from get stays private even after getShared cached the key', async () => {
        await store.put('obj', s('k'), s('abc'));
        await store.getShared('obj', s('k'));
        const mine = await store.get('obj', s('k'));
        mine![0] = 0x7a;
        expect(hex(await store.getShared('obj', s('k')))).toBe(hex(s('abc')));
        expect(hex(await store.get('obj', s('k')))).toBe(hex(s('abc')));
      });

      it('uncache changes no value read: cached or not, present or missing, in any namespace', async () => {
        await store.put('obj', s('k'), s('abc'));
        await store.put('hint', s('k'), s('h'));
        await store.getShared('obj', s('k'));
        store.uncache('obj', s('k'));
        store.uncache('obj', s('missing'));
        store.uncache('hint', s('k'));
        expect(hex(await store.getShared('obj', s('k')))).toBe(hex(s('abc')));
        expect(hex(await store.get('hint', s('k')))).toBe(hex(s('h')));
        expect(await store.get('obj', s('missing'))).toBeUndefined();
        // A write after it is read back as usual.
        await store.put('obj', s('k'), s('new'));
        store.uncache('obj', s('k'));
        expect(hex(await store.getShared('obj', s('k')))).toBe(hex(s('new')));
      });

      it('mutating a batched value after batch() does not change the store', async () => {
        const value = s('abc');
        await store.batch([{ type: 'put', ns: 'obj', key: s('k'), value }]);
        value.fill(0);
        expect(hex(await store.get('obj', s('k')))).toBe(hex(s('abc')));
      });
    });

    describe('namespaces', () => {
      it('the same key in every namespace holds independent values', async () => {
        for (const ns of NAMESPACES) await store.put(ns, s('k'), s(ns));
        for (const ns of NAMESPACES) expect(hex(await store.get(ns, s('k')))).toBe(hex(s(ns)));
        await store.del('hint', s('k'));
        expect(await store.get('hint', s('k'))).toBeUndefined();
        for (const ns of NAMESPACES.filter((n) => n !== 'hint')) {
          expect(hex(await store.get(ns, s('k')))).toBe(hex(s(ns)));
        }
      });

      it('iterating one namespace never shows another one, whatever the bounds', async () => {
        for (const ns of NAMESPACES) {
          await store.put(ns, b(), s(ns));
          await store.put(ns, b(0), s(ns));
          await store.put(ns, b(0xff, 0xff), s(ns));
        }
        for (const ns of NAMESPACES) {
          const all = await collect(store.entries(ns));
          expect(all.map(([k]) => hex(k))).toEqual(['', '00', 'ffff']);
          expect(all.every(([, v]) => hex(v) === hex(s(ns)))).toBe(true);
          expect(await collect(store.keys(ns, { gt: b(0xff, 0xff) }))).toEqual([]);
          expect((await collect(store.keys(ns, { reverse: true }))).map(hex)).toEqual(['ffff', '00', '']);
        }
      });

      it('rejects an unknown namespace', async () => {
        await expect(store.get('nope' as never, s('k'))).rejects.toThrow(/unknown namespace/);
        await expect(store.put('nope' as never, s('k'), s('v'))).rejects.toThrow(/unknown namespace/);
      });
    });

    describe('batch', () => {
      it('applies puts and deletes across namespaces together', async () => {
        await store.put('hint', s('h'), s('old hint'));
        await store.batch([
          { type: 'put', ns: 'obj', key: s('o'), value: s('object') },
          { type: 'del', ns: 'hint', key: s('h') },
          { type: 'put', ns: 'meta', key: s('m'), value: s('meta') },
          { type: 'put', ns: 'xfer', key: s('x'), value: s('xfer') },
        ]);
        expect(hex(await store.get('obj', s('o')))).toBe(hex(s('object')));
        expect(await store.get('hint', s('h'))).toBeUndefined();
        expect(hex(await store.get('meta', s('m')))).toBe(hex(s('meta')));
        expect(hex(await store.get('xfer', s('x')))).toBe(hex(s('xfer')));
      });

      it('applies ops on the same key in order: the last one wins', async () => {
        await store.batch([
          { type: 'put', ns: 'obj', key: s('a'), value: s('1') },
          { type: 'del', ns: 'obj', key: s('a') },
          { type: 'del', ns: 'obj', key: s('b') },
          { type: 'put', ns: 'obj', key: s('b'), value: s('2') },
          { type: 'put', ns: 'obj', key: s('b'), value: s('3') },
        ]);
        expect(await store.get('obj', s('a'))).toBeUndefined();
        expect(hex(await store.get('obj', s('b')))).toBe(hex(s('3')));
      });

      it('an empty batch resolves', async () => {
        await expect(store.batch([])).resolves.toBeUndefined();
      });

      const invalid: [string, unknown][] = [
        ['a string value', { type: 'put', ns: 'meta', key: s('bad'), value: 'not bytes' }],
        ['a missing value', { type: 'put', ns: 'meta', key: s('bad') }],
        ['a string key', { type: 'del', ns: 'meta', key: 'bad' }],
        ['an unknown namespace', { type: 'put', ns: 'nope', key: s('bad'), value: s('v') }],
        ['an unknown op type', { type: 'merge', ns: 'meta', key: s('bad'), value: s('v') }],
        ['null', null],
      ];
      for (const [what, badOp] of invalid) {
        it(`with ${what} in it rejects and applies nothing`, async () => {
          await store.put('hint', s('keep'), s('before'));
          const ops = [
            { type: 'put', ns: 'obj', key: s('first'), value: s('v') },
            { type: 'del', ns: 'hint', key: s('keep') },
            badOp,
            { type: 'put', ns: 'xfer', key: s('last'), value: s('v') },
          ] as BatchOp[];
          await expect(store.batch(ops)).rejects.toThrow(TypeError);
          expect(await store.get('obj', s('first'))).toBeUndefined();
          expect(hex(await store.get('hint', s('keep')))).toBe(hex(s('before')));
          expect(await store.get('xfer', s('last'))).toBeUndefined();
          expect(await store.get('meta', s('bad'))).toBeUndefined();
        });
      }

      it('single-key writes reject non-Uint8Array input', async () => {
        await expect(store.put('obj', s('k'), 'v' as never)).rejects.toThrow(TypeError);
        await expect(store.put('obj', 'k' as never, s('v'))).rejects.toThrow(TypeError);
        await expect(store.get('obj', 'k' as never)).rejects.toThrow(TypeError);
        await expect(store.getMany('obj', [s('k'), 'k' as never])).rejects.toThrow(TypeError);
        expect(await collect(store.keys('obj'))).toEqual([]);
      });
    });

    describe('ordering and ranges', () => {
      // Byte-wise order, with prefixes, 0x00 and 0xff edges, and UTF-8 text (whose byte order
      // is code point order, unlike JavaScript's UTF-16 string order).
      const sortedKeys = [
        b(),
        b(0),
        b(0, 0),
        b(0, 1),
        b(1),
        s('a'),
        s('a\u0000'),
        s('ab'),
        s('b'),
        s('\u00e9'),
        s('\uffff'),
        s('\u{1f600}'),
        b(0xff),
        b(0xff, 0xff),
      ];
      const insertOrder = [7, 13, 2, 9, 0, 11, 4, 12, 1, 8, 3, 10, 6, 5];

      beforeEach(async () => {
        for (const i of insertOrder) await store.put('obj', sortedKeys[i]!, b(i));
      });

      const expectKeys = async (range: RangeOptions | undefined, indices: number[]): Promise<void> => {
        const expected = indices.map((i) => hex(sortedKeys[i]));
        expect((await collect(store.keys('obj', range))).map(hex)).toEqual(expected);
        const entries = await collect(store.entries('obj', range));
        expect(entries.map(([k]) => hex(k))).toEqual(expected);
        expect(entries.map(([, v]) => hex(v))).toEqual(indices.map((i) => hex(b(i))));
      };
      const all = sortedKeys.map((_, i) => i);

      it('iterates in byte-wise key order', async () => {
        await expectKeys(undefined, all);
        await expectKeys({}, all);
      });

      it('reverse iterates backwards', async () => {
        await expectKeys({ reverse: true }, all.slice().reverse());
      });

      it('gte / gt / lte / lt bound the range', async () => {
        await expectKeys({ gte: s('a') }, [5, 6, 7, 8, 9, 10, 11, 12, 13]);
        await expectKeys({ gt: s('a') }, [6, 7, 8, 9, 10, 11, 12, 13]);
        await expectKeys({ lte: s('a') }, [0, 1, 2, 3, 4, 5]);
        await expectKeys({ lt: s('a') }, [0, 1, 2, 3, 4]);
        await expectKeys({ gte: s('a'), lt: s('b') }, [5, 6, 7]);
        await expectKeys({ gt: s('a'), lte: s('b') }, [6, 7, 8]);
        await expectKeys({ gte: b(0), lt: b(1) }, [1, 2, 3]);
      });

      it('when both an exclusive and an inclusive bound are given, both hold', async () => {
        await expectKeys({ gte: s('a'), gt: s('ab') }, [8, 9, 10, 11, 12, 13]);
        await expectKeys({ gte: s('ab'), gt: s('a') }, [7, 8, 9, 10, 11, 12, 13]);
        await expectKeys({ gt: s('a'), gte: s('a') }, [6, 7, 8, 9, 10, 11, 12, 13]);
        await expectKeys({ lte: s('b'), lt: s('ab') }, [0, 1, 2, 3, 4, 5, 6]);
        await expectKeys({ lte: s('ab'), lt: s('b') }, [0, 1, 2, 3, 4, 5, 6, 7]);
        await expectKeys({ lt: s('b'), lte: s('b'), reverse: true, limit: 2 }, [7, 6]);
      });

      it('bounds need not be stored keys', async () => {
        await expectKeys({ gt: s('aa'), lt: s('c') }, [7, 8]);
        await expectKeys({ gte: b(0xfe) }, [12, 13]);
      });

      it('an empty or inverted range yields nothing', async () => {
        await expectKeys({ gt: s('a'), lt: s('a\u0000') }, []);
        await expectKeys({ gte: s('b'), lt: s('a') }, []);
        await expectKeys({ gt: b(0xff, 0xff) }, []);
        await expectKeys({ lt: b() }, []);
      });

      it('limit takes the first n in iteration order; 0 yields nothing', async () => {
        await expectKeys({ limit: 3 }, [0, 1, 2]);
        await expectKeys({ limit: 3, reverse: true }, [13, 12, 11]);
        await expectKeys({ gt: s('a'), limit: 2 }, [6, 7]);
        await expectKeys({ lt: s('b'), limit: 2, reverse: true }, [7, 6]);
        await expectKeys({ limit: 0 }, []);
        await expectKeys({ limit: 1000 }, all);
        await expectKeys({ limit: Number.POSITIVE_INFINITY }, all);
      });

      it('rejects a negative or fractional limit and non-byte bounds', async () => {
        await expect(collect(store.keys('obj', { limit: -1 }))).rejects.toThrow(RangeError);
        await expect(collect(store.entries('obj', { limit: 1.5 }))).rejects.toThrow(RangeError);
        await expect(collect(store.keys('obj', { gte: 'a' as never }))).rejects.toThrow(TypeError);
      });

      it('matches a sorted-array model for any combination of range options', async () => {
        const byte = fc.integer({ min: 0, max: 255 });
        // Bounds drawn near the stored keys so that ranges often hit, touch and miss them.
        const bound = fc.oneof(
          fc.constantFrom(...sortedKeys),
          fc.uint8Array({ maxLength: 3 }),
          fc.tuple(fc.constantFrom(...sortedKeys), byte).map(([k, x]) => Uint8Array.from([...k, x])),
        );
        const range = fc.record(
          {
            gt: bound,
            gte: bound,
            lt: bound,
            lte: bound,
            limit: fc.nat({ max: 16 }),
            reverse: fc.boolean(),
          },
          { requiredKeys: [] },
        );
        await fc.assert(
          fc.asyncProperty(range, async (r) => {
            // Every bound given must hold, also when both kinds are given on one side.
            let model = all.filter((i) => {
              const k = sortedKeys[i]!;
              return (
                (r.gt === undefined || compareBytes(k, r.gt) > 0) &&
                (r.gte === undefined || compareBytes(k, r.gte) >= 0) &&
                (r.lt === undefined || compareBytes(k, r.lt) < 0) &&
                (r.lte === undefined || compareBytes(k, r.lte) <= 0)
              );
            });
            if (r.reverse === true) model = model.reverse();
            if (r.limit !== undefined) model = model.slice(0, r.limit);
            await expectKeys(r, model);
          }),
          { numRuns: 150 },
        );
      });

      it('breaking out of an iteration early releases it', async () => {
        let n = 0;
        for await (const _ of store.entries('obj')) {
          if (++n === 2) break;
        }
        expect(n).toBe(2);
        await store.put('obj', s('after'), s('v'));
        expect(hex(await store.get('obj', s('after')))).toBe(hex(s('v')));
      });
    });

    describe('iteration', () => {
      it('reads a snapshot taken when it starts', async () => {
        const key = (i: number): Uint8Array => s(`k${String(i).padStart(3, '0')}`);
        // More keys than any sane read-ahead, so later ones are read after the writes below.
        for (let i = 0; i < 600; i++) await store.put('obj', key(i), s('old'));
        let n = 0;
        for await (const [k, v] of store.entries('obj')) {
          if (n === 0) {
            await store.put('obj', s('k300x'), s('new'));
            await store.put('obj', key(500), s('new'));
            await store.del('obj', key(599));
          }
          expect(hex(k)).toBe(hex(key(n)));
          expect(hex(v)).toBe(hex(s('old')));
          n++;
        }
        expect(n).toBe(600);
        expect(hex(await store.get('obj', key(500)))).toBe(hex(s('new')));
        expect(await store.get('obj', key(599))).toBeUndefined();
      });
    });

    describe('large values', () => {
      it('stores and reads 1 MiB values through put, batch, getMany and entries', async () => {
        const random = seededRandom(1);
        const big1 = random.bytes(1024 * 1024);
        const big2 = random.bytes(1024 * 1024);
        await store.put('obj', s('big1'), big1);
        await store.batch([
          { type: 'put', ns: 'obj', key: s('big2'), value: big2 },
          { type: 'put', ns: 'hint', key: s('big1'), value: big1 },
        ]);
        expect(Buffer.compare(Buffer.from((await store.get('obj', s('big1')))!), Buffer.from(big1))).toBe(0);
        const [m1, m2] = await store.getMany('obj', [s('big1'), s('big2')]);
        expect(m1!.byteLength).toBe(1024 * 1024);
        expect(Buffer.compare(Buffer.from(m2!), Buffer.from(big2))).toBe(0);
        const entries = await collect(store.entries('obj'));
        expect(entries.map(([k, v]) => [hex(k), v.byteLength])).toEqual([
          [hex(s('big1')), 1024 * 1024],
          [hex(s('big2')), 1024 * 1024],
        ]);
        expect(Buffer.compare(Buffer.from((await store.get('hint', s('big1')))!), Buffer.from(big1))).toBe(0);
      });
    });

    describe('lifecycle', () => {
      it('open is idempotent', async () => {
        await store.open();
        await Promise.all([store.open(), store.open()]);
        await store.put('obj', s('k'), s('v'));
        expect(hex(await store.get('obj', s('k')))).toBe(hex(s('v')));
      });

      it('close is idempotent, also when calls overlap', async () => {
        await store.close();
        await store.close();
        await Promise.all([store.close(), store.close()]);
      });

      it('every operation after close rejects clearly', async () => {
        await store.put('obj', s('k'), s('v'));
        await store.close();
        await expect(store.get('obj', s('k'))).rejects.toThrow(closedMessage);
        await expect(store.getShared('obj', s('k'))).rejects.toThrow(closedMessage);
        await expect(store.getMany('obj', [s('k')])).rejects.toThrow(closedMessage);
        await expect(store.put('obj', s('k'), s('v'))).rejects.toThrow(closedMessage);
        await expect(store.del('obj', s('k'))).rejects.toThrow(closedMessage);
        await expect(store.batch([{ type: 'del', ns: 'obj', key: s('k') }])).rejects.toThrow(closedMessage);
        await expect(collect(store.entries('obj'))).rejects.toThrow(closedMessage);
        await expect(collect(store.keys('obj'))).rejects.toThrow(closedMessage);
      });

      it('writes issued before close() land; close waits for them', async () => {
        const writes = [
          store.put('obj', s('a'), s('1')),
          store.batch([{ type: 'put', ns: 'meta', key: s('b'), value: s('2') }]),
          store.del('obj', s('never')),
        ];
        await store.close();
        await Promise.all(writes);
        await store.open();
        if (fixture.persistent) {
          expect(hex(await store.get('obj', s('a')))).toBe(hex(s('1')));
          expect(hex(await store.get('meta', s('b')))).toBe(hex(s('2')));
        }
      });

      it('a scan longer than one iterator batch returns every key and entry, in order', async () => {
        const n = 2600;
        const names = Array.from({ length: n }, (_, i) => `k${String(i).padStart(5, '0')}`);
        for (let i = 0; i < n; i += 500) {
          await store.batch(names.slice(i, i + 500).map((k) => ({ type: 'put' as const, ns: 'obj' as const, key: s(k), value: s(`v${k}`) })));
        }
        const keys = await collect(store.keys('obj'));
        expect(keys.map((k) => new TextDecoder().decode(k))).toEqual(names);
        const entries = await collect(store.entries('obj'));
        expect(entries.length).toBe(n);
        expect(entries.every(([k, v]) => new TextDecoder().decode(v) === `v${new TextDecoder().decode(k)}`)).toBe(true);
      });

      it('an iteration interrupted by close rejects clearly', async () => {
        for (let i = 0; i < 1000; i++) await store.put('obj', s(`k${String(i).padStart(4, '0')}`), s('v'));
        const iterating = (async () => {
          let n = 0;
          for await (const _ of store.keys('obj')) {
            if (++n === 1) await store.close();
          }
          return n;
        })();
        await expect(iterating).rejects.toThrow(closedMessage);
      });

      it('reopens after close (and keeps the data, if persistent)', async () => {
        await store.put('obj', s('k'), s('v'));
        await store.batch([{ type: 'put', ns: 'meta', key: s('m'), value: s('w') }]);
        await store.close();
        await store.open();
        await store.put('xfer', s('x'), s('y'));
        expect(hex(await store.get('xfer', s('x')))).toBe(hex(s('y')));
        if (fixture.persistent) {
          expect(hex(await store.get('obj', s('k')))).toBe(hex(s('v')));
          expect(hex(await store.get('meta', s('m')))).toBe(hex(s('w')));
        }
      });
    });
  });
}
