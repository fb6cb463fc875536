import { describe, expect, it } from 'vitest';
import {
  buildRing,
  MAX_PARTITION_BITS,
  PARTITION_BITS,
  PARTITION_COUNT,
  type RingMember,
} from '../../../src/ring/index.js';

const m = (id: string, zone = 'z', weight = 1): RingMember => ({ id, zone, weight });

describe('buildRing: examples', () => {
  it('uses 2^16 partitions by default', () => {
    expect(PARTITION_BITS).toBe(16);
    expect(PARTITION_COUNT).toBe(65536);
    expect(buildRing([m('a')], { n: 3 }).partitions).toBe(PARTITION_COUNT);
    expect(buildRing([m('a')], { n: 3, partitionBits: 4 }).partitions).toBe(16);
  });

  it('one node owns everything', () => {
    const ring = buildRing([m('solo')], { n: 3 });
    expect(ring.n).toBe(3);
    for (const p of [0, 1, 4242, 65535]) {
      expect(ring.preferenceList(p)).toEqual(['solo']);
      expect(ring.fullOrder(p)).toEqual(['solo']);
    }
    expect(ring.primaryShare('solo')).toBe(1);
    expect(ring.replicaShare('solo')).toBe(1);
    expect(ring.partitionsOf('solo')).toHaveLength(65536);
  });

  it('two nodes with n=3 give lists of length 2 holding both', () => {
    const ring = buildRing([m('b', 'z1'), m('a', 'z2')], { n: 3 });
    for (let p = 0; p < ring.partitions; p += 97) {
      const list = ring.preferenceList(p);
      expect(list).toHaveLength(2);
      expect([...list].sort()).toEqual(['a', 'b']);
      expect(ring.fullOrder(p)).toEqual(list);
    }
    // Every slot that exists is held by one of two nodes: the shares are exactly 1/2.
    expect(ring.replicaShare('a')).toBe(0.5);
    expect(ring.replicaShare('b')).toBe(0.5);
    expect(ring.primaryShare('a') + ring.primaryShare('b')).toBe(1);
    expect(Math.abs(ring.primaryShare('a') - 0.5)).toBeLessThan(0.02);
  });

  it('an empty ring has empty lists and still partitions keys', () => {
    const ring = buildRing([], { n: 3 });
    expect(ring.members).toEqual([]);
    expect(ring.preferenceList(0)).toEqual([]);
    expect(ring.preferenceList(65535)).toEqual([]);
    expect(ring.fullOrder(7)).toEqual([]);
    expect(ring.partitionsOf('x')).toEqual([]);
    expect(ring.primaryShare('x')).toBe(0);
    expect(ring.replicaShare('x')).toBe(0);
    expect(ring.checksum).toMatch(/^[0-9a-f]{32}$/);
    expect(ring.partitionOf('hello')).toBe(9355);
  });

  it('with n=1 the list is the primary alone', () => {
    const ring = buildRing([m('a', 'x'), m('b', 'y'), m('c', 'z')], { n: 1 });
    for (let p = 0; p < ring.partitions; p += 101) {
      expect(ring.preferenceList(p)).toEqual([ring.fullOrder(p)[0]]);
    }
  });

  it('keeps members sorted by id, as frozen copies', () => {
    const input = [
      { id: 'node-b', zone: 'z', weight: 1, extra: true },
      { id: 'Node-A', zone: 'z', weight: 2 },
      { id: 'node-a', zone: 'y', weight: 1 },
    ];
    const ring = buildRing(input, { n: 3 });
    // Code-unit order, independent of locale: 'N' (0x4e) sorts before 'n' (0x6e).
    expect(ring.members.map((x) => x.id)).toEqual(['Node-A', 'node-a', 'node-b']);
    expect(ring.members[2]).toEqual({ id: 'node-b', zone: 'z', weight: 1 });
    expect(Object.isFrozen(ring.members)).toBe(true);
    expect(Object.isFrozen(ring.members[0])).toBe(true);
    input[0]!.zone = 'changed';
    expect(ring.members[2]!.zone).toBe('z');
  });

  it('returns frozen lists', () => {
    const ring = buildRing([m('a'), m('b'), m('c'), m('d')], { n: 3 });
    expect(Object.isFrozen(ring.preferenceList(3))).toBe(true);
    expect(Object.isFrozen(ring.fullOrder(3))).toBe(true);
    expect(Object.isFrozen(ring.partitionsOf('a'))).toBe(true);
  });

  it('answers unknown ids with nothing', () => {
    const ring = buildRing([m('a'), m('b')], { n: 2 });
    expect(ring.partitionsOf('zz')).toEqual([]);
    expect(ring.primaryShare('zz')).toBe(0);
    expect(ring.replicaShare('zz')).toBe(0);
  });

  it('puts a lone zone in every list when zones are fewer than n', () => {
    const ring = buildRing([m('a', 'big'), m('b', 'big'), m('c', 'big'), m('d', 'big'), m('e', 'small')], {
      n: 3,
    });
    expect(ring.replicaShare('e')).toBe(1 / 3);
    expect(ring.partitionsOf('e')).toHaveLength(65536);
  });
});

describe('buildRing: validation', () => {
  it('rejects duplicate ids', () => {
    expect(() => buildRing([m('a'), m('b'), m('a', 'other')], { n: 3 })).toThrow(/duplicate member id a/);
  });

  it('rejects weights that are not finite and > 0', () => {
    for (const weight of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, -0]) {
      expect(() => buildRing([m('a', 'z', weight)], { n: 3 })).toThrow(RangeError);
    }
    expect(() => buildRing([{ id: 'a', zone: 'z', weight: '1' as unknown as number }], { n: 3 })).toThrow(
      RangeError,
    );
  });

  it('rejects empty ids and non-string zones', () => {
    expect(() => buildRing([m('')], { n: 3 })).toThrow(TypeError);
    expect(() => buildRing([{ id: 'a', zone: 1 as unknown as string, weight: 1 }], { n: 3 })).toThrow(TypeError);
  });

  it('rejects bad n and partitionBits', () => {
    for (const n of [0, -1, 1.5, Number.NaN]) expect(() => buildRing([], { n })).toThrow(RangeError);
    for (const partitionBits of [0, MAX_PARTITION_BITS + 1, 2.5]) {
      expect(() => buildRing([], { n: 3, partitionBits })).toThrow(RangeError);
    }
  });

  it('rejects partitions out of range', () => {
    const ring = buildRing([m('a')], { n: 3, partitionBits: 4 });
    for (const p of [-1, 16, 0.5, Number.NaN]) {
      expect(() => ring.preferenceList(p)).toThrow(RangeError);
      expect(() => ring.fullOrder(p)).toThrow(RangeError);
    }
  });
});

describe('buildRing: pinned routing', () => {
  // These vectors pin the assignment algorithm. If they change, nodes running the old and the
  // new code route differently: that is a breaking change and needs a new ALGORITHM version
  // and a migration plan, not a test update.
  it('pins preference lists, full orders and the checksum (weighted, zoned)', () => {
    const ring = buildRing(
      [m('a', 'z1'), m('b', 'z2'), m('c', 'z3'), m('d', 'z1'), m('e', 'z2', 2)],
      { n: 3 },
    );
    expect(ring.checksum).toBe('76f7e0887025ea57d53ab85c37279406');
    expect(ring.fullOrder(0)).toEqual(['e', 'c', 'a', 'b', 'd']);
    expect(ring.fullOrder(1)).toEqual(['a', 'e', 'c', 'd', 'b']);
    expect(ring.fullOrder(12345)).toEqual(['e', 'c', 'd', 'a', 'b']);
    expect(ring.fullOrder(65535)).toEqual(['b', 'a', 'c', 'd', 'e']);
    expect(ring.preferenceList(12345)).toEqual(['e', 'c', 'd']);
  });

  it('pins preference lists, full orders and the checksum (equal weights)', () => {
    const ring = buildRing([m('a', 'z1'), m('b', 'z2'), m('c', 'z3'), m('d', 'z1')], { n: 3 });
    expect(ring.checksum).toBe('33a13cd32ab99af178a06ef17cd16656');
    expect(ring.fullOrder(0)).toEqual(['b', 'c', 'a', 'd']);
    expect(ring.fullOrder(1)).toEqual(['a', 'c', 'b', 'd']);
    expect(ring.fullOrder(12345)).toEqual(['c', 'd', 'b', 'a']);
    expect(ring.fullOrder(65535)).toEqual(['b', 'a', 'c', 'd']);
  });

  it('pins the empty ring checksum', () => {
    expect(buildRing([], { n: 3 }).checksum).toBe('ce370ec79615263c04c71af291c96d5a');
  });
});
