/**
 * The partitioned ring: fixed equal partitions (top bits of murmur3(key)), each assigned by
 * weighted rendezvous (highest-random-weight) hashing with zone spreading.
 *
 * Why rendezvous over fixed partitions rather than tokens/vnodes: the assignment is a pure
 * function of the member set, so every node derives the same ring with no claimant; with equal
 * weights adding a member only moves replicas *to* that member, even with zone spreading (no
 * reshuffling among the others; see test/unit/ring/ring.movement.test.ts for why); and shares
 * follow weights without tuning vnode counts.
 *
 * What is proportional to weight. Both a member's primary share (lists it is first in) and its
 * replica share (lists it is in at all: what it stores) are, as far as two constraints allow:
 * a member holds at most one replica of a partition, and each list spans min(N, zones) zones.
 * The replica targets are the water-filled proportional shares under those constraints (see
 * effective-weights.ts): a member that would need more than every partition holds every one,
 * a zone that would need more than one replica per list (zones >= N) holds exactly one, a zone
 * that would get less than one (zones < N) gets exactly one, and everyone else shares the rest
 * in proportion. E.g. one weight-2 among five weight-1 members, n = 3: 2/7 of the replicas
 * (version 1 gave it 0.237, about 1.55x a weight-1 member instead of 2x). With 3 zones and
 * n = 3 every list has one member of each zone, so zones hold 1/3 each whatever their weights.
 *
 * Ranking. Member m has a 32-bit seed = murmur3(id). For partition p its hash is
 * h = mix32(seed ^ salt(p)), u = (h + 0.5) / 2^32 in (0, 1), and its draw is E = -ln(u). A
 * score E / rate is an exponential race with that rate: P(m finishes first) = rate / Σ rates.
 * Two races run on the same draws:
 * - the nominal race, score E / weight: its winner is the primary version 1 always chose, so
 *   the primary share is weight / Σ weights;
 * - the replica race, score E / effective rate: finishing in the first N is *not* proportional
 *   to rate (a heavy member's place in the top N saturates), so the rates are solved for
 *   (effective-weights.ts) such that each member's probability of being picked by the walk
 *   below equals its replica target. Members that must always be picked, and represented zones
 *   (see there), race in tiers ahead of or behind everyone else instead of with a rate.
 * Rank orders sort by score ascending, ties by id (members are indexed in id order).
 *
 * The replica set is chosen by the replica race and ordered by the nominal one, rather than
 * running only the replica race (whose winner would be the primary): with effective rates, a
 * weight-4 member among nine weight-1 members would be first in 54 % of the partitions where
 * 4/13 = 31 % is its due, and a primary coordinates the writes forwarded to its partition.
 * Sharing the draws keeps the races close: the primary is the nominal winner in all but a few
 * per mille of partitions (when the winner misses the replica set: then it is the set's best by
 * nominal rank), and changing weights changes the set gradually, never all at once.
 *
 * When the nominal weights already give every member its target, the replica race *is* the
 * nominal race and the ring is exactly the one version 1 built (same lists, same checksum):
 * always with equal weights (these skip the fit: rank by the raw hash, see Planner), and also
 * e.g. with N = 1, with at most N members, or with exactly N zones. Equal weights keep version
 * 1's placement even where zones make it uneven (zones of unequal size and zones < N: a small
 * zone's members fill more than their share), so existing clusters move no data on upgrade.
 * Every other weighted ring is version 2 (ALGORITHM_EFFECTIVE in the checksum): a node running
 * version 1 computes a different ring for it, and the checksums show the disagreement.
 *
 * Seeds must be distinct: two members with the same seed get the same draw in every
 * partition, so one always outranks the other (it is never primary) and the two sit side by
 * side in every rank order. murmur3 does collide on ordinary ids ("node-53119"/"node-70603",
 * "10.0.2.254:8081"/"10.0.144.191:8081"), so a member whose murmur3(id) is already taken by a
 * member earlier in id order is re-seeded with murmur3(id, seed 1, 2, ...) until its seed is
 * unique. Rings without a collision are unchanged; with one, only the colliding members'
 * rankings depend on each other.
 *
 * Preference list of a partition (length N = min(n, members)); let Z = min(N, distinct zones):
 *   1. walk the replica race's rank order and take each member whose zone is not yet taken,
 *      until Z zones are covered;
 *   2. then walk it again and take the best-ranked members not yet taken until N.
 * The list is this set in *pick order by the nominal race*: the same two steps applied to the
 * set, walking it in nominal rank order (with equal weights the two orders coincide, and this
 * is version 1's pick order). So list[0] is the set's nominal best (the primary), and every
 * prefix of length <= Z spans that many zones: a coordinator contacting the first r replicas
 * gets zone diversity. `fullOrder` is the preference list followed by every other member in
 * nominal rank order (the sloppy-quorum fallbacks).
 *
 * Movement. With equal weights, see above. With unequal weights a join or leave changes the
 * targets of everyone, hence the effective rates, so besides the replicas moving to or from
 * that member a little data moves among the others (about 1 % of replica slots when one
 * weight-1 member joins a 6- or 10-member cluster; see the movement tests).
 */
import { createHash } from 'node:crypto';
import { effectiveWeights, TIER_FIRST, TIER_ZONE } from './effective-weights.js';
import { keyHash, mix32, seededHash } from './hash.js';
import type { Ring, RingMember } from './types.js';

/** Default number of partition bits: the keyspace is cut by the top 16 bits of murmur3. */
export const PARTITION_BITS = 16;
/** Default number of partitions (65536). */
export const PARTITION_COUNT = 1 << PARTITION_BITS;
/** Largest accepted `partitionBits` (the preference table is partitions × N entries). */
export const MAX_PARTITION_BITS = 20;
/** Members are stored as Uint16 indices. */
export const MAX_MEMBERS = 0xffff;

/** Options of {@link buildRing}. */
export interface RingOptions {
  /** Replication factor (integer ≥ 1); lists have min(n, members) entries. */
  readonly n: number;
  /** log2 of the partition count, 1..MAX_PARTITION_BITS; default {@link PARTITION_BITS}. */
  readonly partitionBits?: number;
}

/**
 * Version tag of the assignment algorithm; part of the checksum. Rings whose replica race runs
 * on the nominal weights (all equal weights, and whenever those already give every member its
 * share) are exactly what version 1 built and keep its tag; rings that need effective weights
 * are version 2 (a node running version 1 builds a different ring for them).
 */
const ALGORITHM = 'ringkv-ring/1';
const ALGORITHM_EFFECTIVE = 'ringkv-ring/2';
/** 2^-32: maps a u32 hash (+0.5) into the open interval (0, 1). */
const INV_2_32 = 1 / 4294967296;

const NO_IDS: readonly string[] = Object.freeze([]);
const NO_PARTITIONS: readonly number[] = Object.freeze([]);

/** A per-partition salt, so that partition p's hashes don't simply follow p's bit pattern. */
function partitionSalt(p: number): number {
  return mix32(Math.imul(p, 0x9e3779b1) ^ 0x7f4a7c15);
}

function compareIds(a: string, b: string): number {
  // Code-unit order, not localeCompare: must be identical on every node whatever its locale.
  return a < b ? -1 : a > b ? 1 : 0;
}

function normalizeMembers(members: readonly RingMember[]): readonly RingMember[] {
  if (members.length > MAX_MEMBERS) {
    throw new RangeError(`ring: at most ${MAX_MEMBERS} members, got ${members.length}`);
  }
  const out: RingMember[] = [];
  for (const m of members) {
    if (typeof m.id !== 'string' || m.id.length === 0) {
      throw new TypeError('ring: member id must be a non-empty string');
    }
    if (typeof m.zone !== 'string') {
      throw new TypeError(`ring: member ${m.id}: zone must be a string`);
    }
    if (typeof m.weight !== 'number' || !Number.isFinite(m.weight) || m.weight <= 0) {
      throw new RangeError(`ring: member ${m.id}: weight must be finite and > 0, got ${m.weight}`);
    }
    out.push(Object.freeze({ id: m.id, zone: m.zone, weight: m.weight }));
  }
  out.sort((a, b) => compareIds(a.id, b.id));
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.id === out[i - 1]!.id) throw new RangeError(`ring: duplicate member id ${out[i]!.id}`);
  }
  return Object.freeze(out);
}

/**
 * Ranks members and picks the preference list for one partition at a time, reusing its scratch
 * buffers (the build loop runs 65536 times; allocating there would dominate).
 *
 * Only as much of the rank order as the walk needs is produced: scores go into a binary heap
 * (O(k) to build) and members are popped in rank order, so a partition costs
 * O(k + depth · log k) where depth is usually about N, instead of a full sort.
 */
class Planner {
  readonly k: number;
  /** Replicas per partition: min(n, k). */
  readonly replicas: number;
  /** Zones step 1 must cover: min(replicas, distinct zones). */
  readonly zonesWanted: number;
  /** The preference list as member indices (valid after `plan`). */
  readonly picked: Uint16Array;
  readonly #seeds: Int32Array;
  readonly #weights: Float64Array;
  /**
   * All weights equal: rank by the raw hash (descending) and skip the logarithm. Identical order:
   * -ln(u)/w is strictly decreasing in h for a common w, and distinct h (2^-32 apart in u) stay
   * distinct after log and division in double precision. It also keeps the common case free of
   * any dependence on Math.log's last-bit behaviour.
   */
  readonly #uniform: boolean;
  /**
   * Set when the replica race needs effective weights (see effective-weights.ts): its rates
   * and tiers. Undefined: the race runs on the nominal weights, as in version 1.
   */
  readonly #effective: { readonly rates: Float64Array; readonly tiers: Uint8Array } | undefined;
  /** -ln(u) per member for the current partition (effective mode: both races use it). */
  readonly #draws: Float64Array;
  /**
   * Effective mode: each member's place in the replica race for the current partition: 0 goes
   * first, 1 races by score, 2 goes last. Members of represented zones are 2 except the zone's
   * best by nominal rank, 0 (see effective-weights.ts).
   */
  readonly #place: Uint8Array;
  /** Members of represented zones, zone by zone, and where each zone's run starts and ends. */
  readonly #represented: Uint16Array;
  readonly #representedRuns: number[];
  /** Scratch for #orderByNominalRank. */
  readonly #rest: Uint16Array;
  readonly #zoneOf: Uint16Array;
  readonly #scores: Float64Array;
  readonly #heap: Uint16Array;
  #heapSize = 0;
  /** Members passed over in step 1 (zone already taken), in rank order. */
  readonly #skipped: Uint16Array;
  #skippedLen = 0;
  #skippedUsed = 0;
  /** Stamp instead of clearing: zoneTaken[z] === stamp means zone z was taken in this call. */
  readonly #zoneTaken: Uint32Array;
  #stamp = 0;

  constructor(members: readonly RingMember[], n: number) {
    const k = members.length;
    this.k = k;
    this.replicas = Math.min(n, k);
    this.#seeds = new Int32Array(k);
    this.#weights = new Float64Array(k);
    this.#zoneOf = new Uint16Array(k);
    const zoneIndex = new Map<string, number>();
    const seedTaken = new Set<number>();
    members.forEach((m, i) => {
      let seed = keyHash(m.id);
      for (let alt = 1; seedTaken.has(seed); alt++) seed = seededHash(m.id, alt);
      seedTaken.add(seed);
      this.#seeds[i] = seed;
      this.#weights[i] = m.weight;
      let z = zoneIndex.get(m.zone);
      if (z === undefined) {
        z = zoneIndex.size;
        zoneIndex.set(m.zone, z);
      }
      this.#zoneOf[i] = z;
    });
    this.#uniform = members.every((m) => m.weight === members[0]!.weight);
    const zones = zoneIndex.size;
    this.zonesWanted = Math.min(this.replicas, zones);
    const effective = this.#uniform
      ? undefined
      : effectiveWeights({ weights: this.#weights, zoneOf: this.#zoneOf, zones, replicas: this.replicas });
    this.#effective = effective;
    this.#draws = new Float64Array(effective === undefined ? 0 : k);
    this.#place = new Uint8Array(effective === undefined ? 0 : k);
    const represented: number[] = [];
    this.#representedRuns = [0];
    if (effective !== undefined) {
      const tiers = effective.tiers;
      for (let i = 0; i < k; i++) this.#place[i] = tiers[i] === TIER_FIRST ? 0 : tiers[i] === TIER_ZONE ? 2 : 1;
      const byZone: number[][] = Array.from({ length: zones }, () => []);
      for (let i = 0; i < k; i++) if (tiers[i] === TIER_ZONE) byZone[this.#zoneOf[i]!]!.push(i);
      for (const run of byZone) {
        if (run.length === 0) continue;
        represented.push(...run);
        this.#representedRuns.push(represented.length);
      }
    }
    this.#represented = Uint16Array.from(represented);
    this.#rest = new Uint16Array(this.replicas);
    this.picked = new Uint16Array(this.replicas);
    this.#scores = new Float64Array(k);
    this.#heap = new Uint16Array(k);
    this.#skipped = new Uint16Array(k);
    this.#zoneTaken = new Uint32Array(zoneIndex.size);
  }

  /** True when the replica race runs on effective weights (algorithm version 2). */
  get effective(): boolean {
    return this.#effective !== undefined;
  }

  /** Fills `picked` with partition p's preference list (see the module comment). */
  plan(p: number): void {
    this.#rank(p);
    // Effective mode takes a second stamp per partition (#orderByNominalRank).
    if (this.#stamp >= 0xfffffffe) {
      this.#zoneTaken.fill(0);
      this.#stamp = 0;
    }
    const stamp = ++this.#stamp;
    const { replicas, zonesWanted, picked } = this;
    const zoneTaken = this.#zoneTaken;
    const zoneOf = this.#zoneOf;
    const skipped = this.#skipped;
    let count = 0;
    let skippedLen = 0;
    // Step 1 cannot run dry: zonesWanted <= distinct zones, and each zone has a member.
    while (count < zonesWanted) {
      const m = this.#pop();
      const z = zoneOf[m]!;
      if (zoneTaken[z] === stamp) {
        skipped[skippedLen++] = m;
      } else {
        zoneTaken[z] = stamp;
        picked[count++] = m;
      }
    }
    // Step 2: the best-ranked members not taken are the skipped ones (all ranked above whatever
    // is still in the heap), then the heap.
    let used = 0;
    while (count < replicas) picked[count++] = used < skippedLen ? skipped[used++]! : this.#pop();
    this.#skippedLen = skippedLen;
    this.#skippedUsed = used;
    if (this.#effective !== undefined) this.#orderByNominalRank();
  }

  /**
   * Effective mode: `picked` holds the replica set in the replica race's pick order; reorders
   * it by the nominal race, walking it the way `plan` walks the members (members of zones not
   * yet covered first, until zonesWanted zones are, then the rest), so list[0] is the set's
   * best member by nominal weight and every prefix of length <= Z still spans that many zones.
   */
  #orderByNominalRank(): void {
    const { replicas, zonesWanted, picked } = this;
    // Insertion sort of a handful of members by nominal score, ties by index.
    for (let i = 1; i < replicas; i++) {
      const m = picked[i]!;
      let j = i;
      while (j > 0 && this.#nominallyBefore(m, picked[j - 1]!)) {
        picked[j] = picked[j - 1]!;
        j--;
      }
      picked[j] = m;
    }
    if (zonesWanted <= 1) return;
    const stamp = ++this.#stamp;
    const zoneTaken = this.#zoneTaken;
    const zoneOf = this.#zoneOf;
    const rest = this.#rest;
    let covered = 0;
    let restLen = 0;
    let count = 0;
    for (let i = 0; i < replicas; i++) {
      const m = picked[i]!;
      const z = zoneOf[m]!;
      if (covered < zonesWanted && zoneTaken[z] !== stamp) {
        zoneTaken[z] = stamp;
        covered++;
        picked[count++] = m;
      } else {
        rest[restLen++] = m;
      }
    }
    for (let i = 0; i < restLen; i++) picked[count++] = rest[i]!;
  }

  /** Nominal rank order (the version-1 race): -ln(u)/weight ascending, ties by index. */
  #nominallyBefore(a: number, b: number): boolean {
    const sa = this.#draws[a]! / this.#weights[a]!;
    const sb = this.#draws[b]! / this.#weights[b]!;
    return sa < sb || (sa === sb && a < b);
  }

  /**
   * After `plan(p)`: writes p's full order into `out`: the picks, then everyone else by rank
   * (the nominal rank in effective mode, as for the order within the list).
   */
  fullOrder(out: number[]): void {
    let j = 0;
    for (let i = 0; i < this.replicas; i++) out[j++] = this.picked[i]!;
    const first = j;
    for (let i = this.#skippedUsed; i < this.#skippedLen; i++) out[j++] = this.#skipped[i]!;
    while (this.#heapSize > 0) out[j++] = this.#pop();
    if (this.#effective !== undefined) {
      const rest = out.slice(first, j).sort((a, b) => (this.#nominallyBefore(a, b) ? -1 : 1));
      for (let i = 0; i < rest.length; i++) out[first + i] = rest[i]!;
    }
  }

  /** Scores every member for partition p and heapifies them. */
  #rank(p: number): void {
    const k = this.k;
    const scores = this.#scores;
    const seeds = this.#seeds;
    const salt = partitionSalt(p);
    const effective = this.#effective;
    if (this.#uniform) {
      for (let i = 0; i < k; i++) scores[i] = -mix32(seeds[i]! ^ salt);
    } else if (effective !== undefined) {
      // The same draws run both races: the replica race on effective rates (#before compares
      // places first), the order within the list and the fallbacks on nominal weights
      // (#nominallyBefore).
      const draws = this.#draws;
      const rates = effective.rates;
      for (let i = 0; i < k; i++) {
        const u = (mix32(seeds[i]! ^ salt) + 0.5) * INV_2_32;
        const draw = -Math.log(u);
        draws[i] = draw;
        scores[i] = draw / rates[i]!;
      }
      // Each represented zone sends its best member by nominal rank first, the rest last.
      const place = this.#place;
      const represented = this.#represented;
      const runs = this.#representedRuns;
      for (let r = 1; r < runs.length; r++) {
        let best = represented[runs[r - 1]!]!;
        for (let j = runs[r - 1]!; j < runs[r]!; j++) {
          const m = represented[j]!;
          place[m] = 2;
          if (this.#nominallyBefore(m, best)) best = m;
        }
        place[best] = 0;
      }
    } else {
      const weights = this.#weights;
      for (let i = 0; i < k; i++) {
        const u = (mix32(seeds[i]! ^ salt) + 0.5) * INV_2_32;
        scores[i] = -Math.log(u) / weights[i]!;
      }
    }
    const heap = this.#heap;
    for (let i = 0; i < k; i++) heap[i] = i;
    this.#heapSize = k;
    for (let i = (k >>> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  /**
   * True if member a ranks before member b in the replica race: lower tier (effective mode),
   * then lower score, ties by index (= id order).
   */
  #before(a: number, b: number): boolean {
    if (this.#effective !== undefined) {
      const pa = this.#place[a]!;
      const pb = this.#place[b]!;
      if (pa !== pb) return pa < pb;
    }
    const sa = this.#scores[a]!;
    const sb = this.#scores[b]!;
    return sa < sb || (sa === sb && a < b);
  }

  /** Removes and returns the best-ranked member left in the heap (caller ensures non-empty). */
  #pop(): number {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = --this.#heapSize;
    if (last > 0) {
      heap[0] = heap[last]!;
      this.#siftDown(0);
    }
    return top;
  }

  #siftDown(start: number): void {
    const heap = this.#heap;
    const size = this.#heapSize;
    const m = heap[start]!;
    let i = start;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && this.#before(heap[child + 1]!, heap[child]!)) child++;
      if (!this.#before(heap[child]!, m)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = m;
  }
}

/**
 * Hex checksum of everything routing depends on: the algorithm version, partition bits, n,
 * each member's id and weight (which fix every partition's rank order, hence the fallback
 * order) and the preference table (which also reflects zones). Equal checksums mean equal
 * partitionOf, preferenceList and fullOrder; different checksums mean different routing, except
 * for weight changes that happen to leave every rank order intact (e.g. scaling all weights).
 */
function routingChecksum(
  bits: number,
  n: number,
  members: readonly RingMember[],
  table: Uint16Array,
  effective: boolean,
): string {
  const digest = createHash('sha256');
  // JSON gives an unambiguous encoding; weights as numbers round-trip exactly.
  const algorithm = effective ? ALGORITHM_EFFECTIVE : ALGORITHM;
  digest.update(JSON.stringify([algorithm, bits, n, members.map((m) => [m.id, m.weight])]));
  // Little-endian bytes written explicitly so the checksum does not depend on the host.
  const bytes = new Uint8Array(table.length * 2);
  for (let i = 0; i < table.length; i++) {
    const m = table[i]!;
    bytes[2 * i] = m & 0xff;
    bytes[2 * i + 1] = m >>> 8;
  }
  digest.update(bytes);
  return digest.digest('hex').slice(0, 32);
}

class PartitionRing implements Ring {
  readonly partitions: number;
  readonly n: number;
  readonly members: readonly RingMember[];
  readonly checksum: string;
  readonly #shift: number;
  readonly #planner: Planner;
  readonly #replicas: number;
  /** partitions × replicas member indices: row p is partition p's preference list. */
  readonly #table: Uint16Array;
  readonly #indexOf: Map<string, number>;
  readonly #primaryCount: Uint32Array;
  readonly #replicaCount: Uint32Array;
  readonly #listCache: (readonly string[] | undefined)[];
  readonly #partitionsCache = new Map<number, readonly number[]>();

  constructor(members: readonly RingMember[], n: number, bits: number) {
    this.partitions = 2 ** bits;
    this.n = n;
    this.members = members;
    this.#shift = 32 - bits;
    const planner = new Planner(members, n);
    this.#planner = planner;
    const { k, replicas } = planner;
    this.#replicas = replicas;
    this.#indexOf = new Map(members.map((m, i) => [m.id, i]));
    this.#listCache = new Array<readonly string[] | undefined>(this.partitions);

    const table = new Uint16Array(this.partitions * replicas);
    const primaryCount = new Uint32Array(k);
    const replicaCount = new Uint32Array(k);
    for (let p = 0; p < this.partitions && k > 0; p++) {
      planner.plan(p);
      const picked = planner.picked;
      const base = p * replicas;
      for (let i = 0; i < replicas; i++) {
        const m = picked[i]!;
        table[base + i] = m;
        replicaCount[m] = replicaCount[m]! + 1;
      }
      const primary = picked[0]!;
      primaryCount[primary] = primaryCount[primary]! + 1;
    }
    this.checksum = routingChecksum(bits, n, members, table, planner.effective);
    this.#table = table;
    this.#primaryCount = primaryCount;
    this.#replicaCount = replicaCount;
  }

  partitionOf(key: string): number {
    return keyHash(key) >>> this.#shift;
  }

  preferenceList(partition: number): readonly string[] {
    this.#check(partition);
    const cached = this.#listCache[partition];
    if (cached !== undefined) return cached;
    const replicas = this.#replicas;
    if (replicas === 0) return NO_IDS;
    const base = partition * replicas;
    const list: string[] = new Array<string>(replicas);
    for (let i = 0; i < replicas; i++) list[i] = this.members[this.#table[base + i]!]!.id;
    Object.freeze(list);
    this.#listCache[partition] = list;
    return list;
  }

  fullOrder(partition: number): readonly string[] {
    this.#check(partition);
    const planner = this.#planner;
    if (planner.k === 0) return NO_IDS;
    planner.plan(partition);
    const indices: number[] = new Array<number>(planner.k);
    planner.fullOrder(indices);
    return Object.freeze(indices.map((i) => this.members[i]!.id));
  }

  partitionsOf(nodeId: string): readonly number[] {
    const m = this.#indexOf.get(nodeId);
    if (m === undefined) return NO_PARTITIONS;
    const cached = this.#partitionsCache.get(m);
    if (cached !== undefined) return cached;
    const replicas = this.#replicas;
    const table = this.#table;
    const out: number[] = [];
    for (let p = 0; p < this.partitions; p++) {
      const base = p * replicas;
      for (let i = 0; i < replicas; i++) {
        if (table[base + i] === m) {
          out.push(p);
          break;
        }
      }
    }
    Object.freeze(out);
    this.#partitionsCache.set(m, out);
    return out;
  }

  primaryShare(nodeId: string): number {
    const m = this.#indexOf.get(nodeId);
    return m === undefined ? 0 : this.#primaryCount[m]! / this.partitions;
  }

  /**
   * Fraction of the replica slots that exist, partitions × min(n, members), so that the
   * shares of all members sum to 1 even when there are fewer members than n.
   */
  replicaShare(nodeId: string): number {
    const m = this.#indexOf.get(nodeId);
    return m === undefined ? 0 : this.#replicaCount[m]! / (this.partitions * this.#replicas);
  }

  #check(partition: number): void {
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.partitions) {
      throw new RangeError(`ring: partition ${partition} out of range 0..${this.partitions - 1}`);
    }
  }
}

/**
 * Builds the ring for a member set. Pure and deterministic: the result depends only on the
 * set of members (input order is irrelevant), `n` and `partitionBits`. Throws on duplicate
 * ids, empty ids, non-positive or non-finite weights, or bad options. An empty member list
 * gives a ring whose preference lists are empty.
 */
export function buildRing(members: readonly RingMember[], opts: RingOptions): Ring {
  const { n } = opts;
  const bits = opts.partitionBits ?? PARTITION_BITS;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`ring: n must be an integer >= 1, got ${n}`);
  if (!Number.isInteger(bits) || bits < 1 || bits > MAX_PARTITION_BITS) {
    throw new RangeError(`ring: partitionBits must be an integer 1..${MAX_PARTITION_BITS}, got ${bits}`);
  }
  return new PartitionRing(normalizeMembers(members), n, bits);
}
