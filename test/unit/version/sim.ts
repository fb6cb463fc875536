/**
 * Test helpers for the versioning module: fast-check arbitraries for clocks and objects,
 * and a tiny simulation of replicas and clients that keeps a causal model of every write
 * (what each write's client had seen), so tests can say which writes must survive.
 */
import fc from 'fast-check';
import {
  compareDots,
  contextAfterWrite,
  covers,
  decodeContext,
  emptyClock,
  encodeContext,
  isStale,
  mergeMaybe,
  mint,
  sameVersion,
} from '../../../src/version/index.js';
import type { Dot, Sibling, VersionedObject, VersionVector } from '../../../src/version/index.js';

// ---------------------------------------------------------------------------------------
// Arbitraries

/** Actors that are awkward as plain-object keys or in sort order, plus arbitrary Unicode. */
export const actorArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('n1.1', 'n2.1', 'n3.7', '__proto__', 'constructor', 'toString', '10', '9', 'é.1', '😀.3', '\uFEFFbom'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }),
);

/** Counters across the whole valid range, biased to small ones. */
export const counterArb: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 1, max: 20 }),
  fc.constant(Number.MAX_SAFE_INTEGER),
  fc.maxSafeNat().filter((n) => n >= 1),
);

export const clockArb: fc.Arbitrary<VersionVector> = fc
  .uniqueArray(fc.tuple(actorArb, counterArb), { selector: ([a]) => a, maxLength: 8 })
  .map((entries) => Object.fromEntries(entries));

export const dotKey = (d: Dot): string => `${d.actor}\u0000${d.counter}`;

const siblingArb = (actors: fc.Arbitrary<string>, counters: fc.Arbitrary<number>): fc.Arbitrary<Sibling> =>
  fc
    .record({
      actor: actors,
      counter: counters,
      value: fc.uint8Array({ maxLength: 48 }),
      contentType: fc.string({ unit: 'binary', maxLength: 24 }),
      lastModified: fc.integer({ min: 0, max: 2 ** 48 }),
      deleted: fc.boolean(),
    })
    .map(({ actor, counter, value, contentType, lastModified, deleted }) => ({
      dot: { actor, counter },
      value: deleted ? new Uint8Array(0) : value,
      contentType,
      lastModified,
      deleted,
    }));

/**
 * Canonical objects that need not be reachable by any history: arbitrary clocks and
 * sibling sets (sorted, unique dots). With `wellFormed`, the clock covers every dot.
 * With `smallPools`, dots come from a few actors and counters, so two independently
 * generated objects often hold different contents under the same dot.
 */
export function objectArb(opts: { wellFormed?: boolean; smallPools?: boolean } = {}): fc.Arbitrary<VersionedObject> {
  const actors = opts.smallPools ? fc.constantFrom('a.1', 'b.1', '__proto__') : actorArb;
  const counters = opts.smallPools ? fc.integer({ min: 1, max: 4 }) : counterArb;
  return fc
    .record({
      clock: opts.smallPools
        ? fc
            .uniqueArray(fc.tuple(actors, counters), { selector: ([a]) => a, maxLength: 3 })
            .map((e) => Object.fromEntries(e) as VersionVector)
        : clockArb,
      siblings: fc.uniqueArray(siblingArb(actors, counters), { selector: (s) => dotKey(s.dot), maxLength: 6 }),
    })
    .map(({ clock, siblings }) => {
      const sorted = [...siblings].sort((a, b) => compareDots(a.dot, b.dot));
      if (!opts.wellFormed) return { clock, siblings: sorted };
      const entries = new Map(Object.entries(clock));
      for (const s of sorted) entries.set(s.dot.actor, Math.max(entries.get(s.dot.actor) ?? 0, s.dot.counter));
      return { clock: Object.fromEntries(entries), siblings: sorted };
    });
}

// ---------------------------------------------------------------------------------------
// Simulation

/** One client operation against the simulated replicas. Indexes are taken modulo counts. */
export type Op =
  | { readonly t: 'write'; readonly client: number; readonly replica: number; readonly useCtx: boolean; readonly del: boolean }
  | { readonly t: 'read'; readonly client: number; readonly replicas: readonly number[]; readonly repair: boolean }
  | { readonly t: 'sync'; readonly from: number; readonly to: number };

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('write' as const), client: fc.nat(3), replica: fc.nat(8), useCtx: fc.boolean(), del: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('read' as const),
      client: fc.nat(3),
      replicas: fc.uniqueArray(fc.nat(2), { minLength: 1, maxLength: 3 }),
      repair: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('sync' as const), from: fc.nat(8), to: fc.nat(8) }) },
);

interface WriteRecord {
  readonly dot: Dot;
  readonly value: Uint8Array;
  readonly deleted: boolean;
  /** Keys of every write this one's context had seen, itself included. */
  readonly history: ReadonlySet<string>;
}

interface Session {
  /** Context to send with the next write, or undefined before the first read/write. */
  ctx: VersionVector | undefined;
  /** Writes the client has seen (directly or as causal history of what it saw). */
  knowledge: Set<string>;
}

const enc = new TextEncoder();

/** Replicas, clients and the causal model. Every method checks local invariants as it goes. */
export class Sim {
  readonly objects: (VersionedObject | undefined)[];
  readonly writes = new Map<string, WriteRecord>();
  /** Every state any replica was in, in order: material for algebra tests. */
  readonly snapshots: VersionedObject[] = [];
  private readonly sessions: Session[] = [];
  private now = 1_700_000_000_000;

  constructor(readonly actors: readonly string[] = ['n1.1', '__proto__', 'ü.2']) {
    this.objects = actors.map(() => undefined);
  }

  private replica(i: number): number {
    return i % this.actors.length;
  }

  private session(i: number): Session {
    let s = this.sessions[i];
    if (s === undefined) {
      s = { ctx: undefined, knowledge: new Set() };
      this.sessions[i] = s;
    }
    return s;
  }

  private set(i: number, obj: VersionedObject | undefined): void {
    this.objects[i] = obj;
    if (obj !== undefined) this.snapshots.push(obj);
  }

  /** Everything the client learns from seeing these siblings: them and their histories. */
  private learn(siblings: readonly Sibling[]): Set<string> {
    const out = new Set<string>();
    for (const s of siblings) {
      const w = this.writes.get(dotKey(s.dot));
      if (w === undefined) throw new Error(`sibling ${dotKey(s.dot)} was never written`);
      for (const k of w.history) out.add(k);
    }
    return out;
  }

  /** Client write (or delete) through one replica; returns the new dot. */
  write(client: number, replicaIndex: number, useCtx: boolean, del: boolean): Dot {
    const i = this.replica(replicaIndex);
    const session = this.session(client);
    const ctx = useCtx && session.ctx !== undefined ? session.ctx : emptyClock();
    const seen = useCtx && session.ctx !== undefined ? session.knowledge : new Set<string>();
    const value = enc.encode(`write ${this.writes.size} by client ${client}`);
    this.now += 1;
    const { object, dot } = mint(
      this.objects[i],
      ctx,
      { value, contentType: 'text/plain', deleted: del },
      this.actors[i]!,
      this.now,
    );
    const key = dotKey(dot);
    if (this.writes.has(key)) throw new Error(`dot ${key} minted twice`);
    const history = new Set(seen);
    history.add(key);
    this.writes.set(key, { dot, value, deleted: del, history });
    this.set(i, object);
    const next = contextAfterWrite(ctx, object, dot);
    session.ctx = next;
    session.knowledge = covers(next, dot) ? history : new Set(seen);
    return dot;
  }

  /** Client read through several replicas (merged, like a quorum read), optional read repair. */
  read(client: number, replicaIndexes: readonly number[], repair: boolean): VersionedObject | undefined {
    const indexes = [...new Set(replicaIndexes.map((r) => this.replica(r)))];
    let merged: VersionedObject | undefined;
    for (const i of indexes) merged = mergeMaybe(merged, this.objects[i]);
    const session = this.session(client);
    if (merged === undefined) {
      session.ctx = undefined;
      session.knowledge = new Set();
      return undefined;
    }
    // The context goes through its wire form, as it would over HTTP.
    session.ctx = decodeContext(encodeContext(merged.clock));
    session.knowledge = this.learn(merged.siblings);
    if (repair) {
      for (const i of indexes) {
        const current = this.objects[i];
        if (!isStale(current, merged)) continue;
        const repaired = mergeMaybe(current, merged)!;
        if (isStale(repaired, merged)) throw new Error('still stale after repair');
        if (!sameVersion(repaired, merged)) throw new Error('repair did not reach the merged version');
        this.set(i, repaired);
      }
    }
    return merged;
  }

  /** One-way anti-entropy / handoff: `to` merges in what `from` has. */
  sync(fromIndex: number, toIndex: number): void {
    const from = this.replica(fromIndex);
    const to = this.replica(toIndex);
    const a = this.objects[from];
    if (a === undefined || from === to) return;
    const before = this.objects[to];
    const after = mergeMaybe(before, a)!;
    if (before !== undefined && !isStale(before, a) && !sameVersion(after, before)) {
      throw new Error('isStale said fresh but merge changed the version');
    }
    this.set(to, after);
  }

  run(op: Op): void {
    if (op.t === 'write') this.write(op.client, op.replica, op.useCtx, op.del);
    else if (op.t === 'read') this.read(op.client, op.replicas, op.repair);
    else this.sync(op.from, op.to);
  }

  /** Merge every replica into every other, folding in the given order; returns the result. */
  fullSync(order: readonly number[] = this.actors.map((_, i) => i)): VersionedObject | undefined {
    let all: VersionedObject | undefined;
    for (const i of order) all = mergeMaybe(all, this.objects[this.replica(i)]);
    for (let i = 0; i < this.objects.length; i++) this.set(i, mergeMaybe(this.objects[i], all));
    return all;
  }

  /** Keys of writes no other write's context has seen: exactly what must survive. */
  maximalWrites(): Set<string> {
    const superseded = new Set<string>();
    for (const [key, w] of this.writes) {
      for (const h of w.history) if (h !== key) superseded.add(h);
    }
    return new Set([...this.writes.keys()].filter((k) => !superseded.has(k)));
  }
}

/** Sorted dot keys of an object's siblings. */
export function dotKeys(obj: VersionedObject | undefined): string[] {
  return (obj?.siblings ?? []).map((s) => dotKey(s.dot)).sort();
}

/** Run ops on a fresh simulation. */
export function simulate(ops: readonly Op[], actors?: readonly string[]): Sim {
  const sim = new Sim(actors);
  for (const op of ops) sim.run(op);
  return sim;
}

/**
 * Reachable objects: snapshots of replicas in a random history. Merging any of them is
 * what replicas actually do, so the algebra must hold on these exactly.
 */
export const universeArb: fc.Arbitrary<VersionedObject[]> = fc
  .array(opArb, { minLength: 1, maxLength: 30, size: 'max' })
  .map((ops) => {
    const sim = simulate(ops);
    sim.fullSync();
    return sim.snapshots;
  })
  .filter((s) => s.length > 0);

/** Three objects from one history (indexes chosen by fast-check, so shrinking works). */
export const threeReachableArb: fc.Arbitrary<[VersionedObject, VersionedObject, VersionedObject]> = fc
  .tuple(universeArb, fc.nat(), fc.nat(), fc.nat())
  .map(([u, i, j, k]) => [u[i % u.length]!, u[j % u.length]!, u[k % u.length]!]);

/** Merge of a list of objects (undefined for none). */
export function mergeAll(objs: readonly (VersionedObject | undefined)[]): VersionedObject | undefined {
  let out: VersionedObject | undefined;
  for (const o of objs) out = mergeMaybe(out, o);
  return out;
}
