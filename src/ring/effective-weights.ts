/**
 * Effective weights: the rates the ring's replica race runs with so that every member's share
 * of replicas, not just of primaries, is proportional to its weight (see ring.ts for the race).
 *
 * Rendezvous ranking with scores -ln(u)/w is an exponential race with rate w: the first place
 * goes to m with probability w/Σw, but a place among the first N does not. With n = 3, a
 * weight-2 node among five weight-1 nodes finishes in the top 3 of 71 % of the races where
 * 6/7 = 86 % is its due. So the ring runs the race that picks the replicas with *effective* rates v,
 * solved for here so that each member's probability of being picked equals its target share,
 * and keeps the nominal weights for the order within the list (the primary) and the fallbacks.
 *
 * Targets. Member m should be in a fraction t(m) of the preference lists, Σ t = N (the list
 * length), with t proportional to weight as far as the constraints allow (water-filling):
 * - t(m) <= 1 (one replica per member): a member whose proportional share would exceed 1 is
 *   capped at 1 ("always a replica"), and the others share the rest in proportion;
 * - zones >= N: every list takes N distinct zones, so a zone's total is capped at 1 the same
 *   way, and a zone's total is split among its members in proportion to weight;
 * - zones < N: every list covers every zone, so a zone's total is at least 1; a zone whose
 *   proportional total falls short is raised to exactly 1 ("floored": one replica per list,
 *   split in proportion inside the zone) and the other zones share the rest.
 *
 * Tiers. Targets of exactly 1 or exactly "one per list" cannot be hit by finite rates, so
 * those members do not run in the fitted race (tier 1): a capped member goes first (tier 0,
 * "always in"); a capped zone (zones >= N) or floored zone (zones < N) is a "represented" zone:
 * per partition its best member by nominal rank goes first, which splits the zone's one
 * replica in proportion to weight, and its other members go last (they take a fill slot only
 * if nobody else is left). Only the representative goes first: the whole zone first would make
 * the walk pop and skip all of it in every partition.
 *
 * Fit. The probability that m is picked is an integral over time of "m arrives at t and the
 * zone walk still has room for it", where the others' arrivals by t are independent
 * Bernoullis (1 - e^{-v t}); the walk's state is a few small counts, so a truncated
 * Poisson-binomial dynamic program evaluates it (see the two models below). The integral is a
 * trapezoid sum over ln t, which converges geometrically for these smooth, rapidly decaying
 * integrands (step 0.25 agrees with step 0.0625 to ~1e-15). Members with the same zone and
 * weight form one class: one binomial factor, and one unknown (with zones >= N, one unknown
 * per zone). The unknowns are solved for by Broyden's method (see solve) until every
 * probability is within 1e-10 of its target, or after MAX_EVALUATIONS model evaluations
 * (typically 5 to 15; over 1,600 random clusters of up to 80 members the worst relative miss
 * was 1.4e-4, with weights spanning 0.01..100, against a sampling noise of ~0.5 % for 65,536
 * partitions). If the nominal weights already meet the targets, there is nothing to fit and
 * the ring keeps its version-1 form.
 *
 * Determinism. The result depends on the members' zones and weights (in id order) and on N
 * only, not on ids or on the partition count, and every step runs in a fixed order, so each
 * node computes the same rates. The fitted factors (rate / weight) are rounded to float32, so
 * a last-bit difference in Math.exp or Math.log between two engines could only matter at a
 * rounding boundary; V8 uses the same fdlibm-derived functions on every platform, and the
 * ring checksum would show a disagreement.
 */

/** Tier of a member in the replica race (see the module doc): always in. */
export const TIER_FIRST = 0;
/** Races with its fitted rate. */
export const TIER_RACE = 1;
/** Member of a represented zone: its best by nominal rank goes first, the others last. */
export const TIER_ZONE = 2;

/** The inputs: members in the ring's (id) order. */
export interface PlacementInput {
  /** Nominal weights (> 0). */
  readonly weights: Float64Array;
  /** Zone index of each member, 0..zones-1, numbered in order of first appearance. */
  readonly zoneOf: Uint16Array;
  readonly zones: number;
  /** List length N = min(n, members). */
  readonly replicas: number;
}

/** Rates and tiers for the replica race; see the module doc. */
export interface EffectiveWeights {
  readonly rates: Float64Array;
  readonly tiers: Uint8Array;
  /** Target fraction of lists each member should be in. */
  readonly targets: Float64Array;
  /** The model's probability, at the returned rates, that each member is in a list. */
  readonly expected: Float64Array;
}

/** Stop fitting when every tier-1 member's probability is this close to its target. */
const TOLERANCE = 1e-10;
/** Nominal weights count as meeting the targets within this (quadrature error is ~1e-15). */
const NOMINAL_TOLERANCE = 1e-9;
/** Budget of model evaluations for the fit (each is one pass over the integration grid). */
const MAX_EVALUATIONS = 80;
/** Above this many unknowns the fit keeps a diagonal inverse Jacobian (see InverseJacobian). */
const MAX_BROYDEN_UNKNOWNS = 512;
/** Largest change of a log-rate in one step (a factor of 16). */
const MAX_STEP = Math.log(16);
/** Caps (λ·w >= 1 - CAP_SLACK) count as exactly 1, so no member is left needing v → ∞. */
const CAP_SLACK = 1e-9;
/** Trapezoid step in ln t, and the integration range around the rates' time scales. */
const STEP = 0.25;
const LEFT_TAIL = 14;
const RIGHT_TAIL = Math.log(48);

/**
 * Target fraction of lists per member (see the module doc) and the tier each member races in.
 * Exported for tests and measurements.
 */
export function replicaTargets(input: PlacementInput): { targets: Float64Array; tiers: Uint8Array } {
  const { zoneOf, zones, replicas } = input;
  const weights = relative(input.weights);
  const k = weights.length;
  const targets = new Float64Array(k);
  const tiers = new Uint8Array(k).fill(TIER_RACE);
  if (k <= replicas) {
    targets.fill(1);
    tiers.fill(TIER_FIRST);
    return { targets, tiers };
  }
  const membersOf = groupByZone(zoneOf, zones);
  if (zones >= replicas) {
    const zoneWeight = membersOf.map((ms) => sum(ms.map((m) => weights[m]!)));
    const zoneTarget = waterFill(zoneWeight, replicas);
    membersOf.forEach((ms, z) => {
      for (const m of ms) {
        targets[m] = (zoneTarget[z]! * weights[m]!) / zoneWeight[z]!;
        if (zoneTarget[z] === 1) tiers[m] = TIER_ZONE;
      }
    });
    return { targets, tiers };
  }
  // zones < N: raise zones whose proportional total is below 1 to exactly 1, until none is.
  const floored = new Array<boolean>(zones).fill(false);
  for (;;) {
    const free: number[] = [];
    for (let m = 0; m < k; m++) if (!floored[zoneOf[m]!]) free.push(m);
    const room = replicas - floored.filter(Boolean).length;
    const shares = waterFill(
      free.map((m) => weights[m]!),
      room,
    );
    free.forEach((m, i) => {
      targets[m] = shares[i]!;
    });
    const short: number[] = [];
    for (let z = 0; z < zones; z++) {
      // A total of exactly 1 is floored too: "never a fill" needs tier 2, not a rate → 0.
      if (!floored[z] && sum(membersOf[z]!.map((m) => targets[m]!)) < 1 + CAP_SLACK) short.push(z);
    }
    // Flooring a zone takes one slot and its members out of the pool; the rest must still
    // fill the remaining slots, or flooring would leave lists short.
    const left = free.length - sum(short.map((z) => membersOf[z]!.length));
    if (short.length === 0 || left < room - short.length) break;
    for (const z of short) floored[z] = true;
  }
  for (let z = 0; z < zones; z++) {
    const ms = membersOf[z]!;
    if (floored[z]) {
      const shares = waterFill(
        ms.map((m) => weights[m]!),
        1,
      );
      ms.forEach((m, i) => {
        targets[m] = shares[i]!;
        tiers[m] = TIER_ZONE;
      });
    } else {
      for (const m of ms) if (targets[m] === 1) tiers[m] = TIER_FIRST;
    }
  }
  return { targets, tiers };
}

/**
 * Effective rates for the replica race, or undefined when the nominal weights (one tier) already
 * give every member its target: then the ring is the one earlier versions built. Callers skip
 * equal weights before calling (the answer is always undefined for them).
 */
export function effectiveWeights(input: PlacementInput): EffectiveWeights | undefined {
  const { zones, replicas } = input;
  // Only ratios matter; relative weights (largest 1) keep sums and rates finite.
  const weights = relative(input.weights);
  const k = weights.length;
  if (replicas <= 1 || k <= replicas) return undefined;
  const { targets, tiers } = replicaTargets(input);
  const model: InclusionModel = zones >= replicas ? new ZoneRaceModel(input) : new FillRaceModel(input);

  const nominal = model.inclusion(weights, new Uint8Array(k).fill(TIER_RACE));
  if (maxError(nominal, targets, undefined) <= NOMINAL_TOLERANCE) return undefined;

  // The unknowns: x = log of each group's factor on its members' nominal weights.
  const rates = Float64Array.from(weights);

  const groups = model.groups(tiers);
  const x = solve(groups.length, (at) => {
    groups.forEach((ms, i) => {
      const factor = Math.exp(at[i]!);
      for (const m of ms) rates[m] = weights[m]! * factor;
    });
    const expected = model.inclusion(rates, tiers);
    return {
      residual: Float64Array.from(
        groups,
        (ms) => logit(model.share(expected, ms)) - logit(model.share(targets, ms)),
      ),
      done: maxError(expected, targets, tiers) <= TOLERANCE,
    };
  });
  groups.forEach((ms, i) => {
    // Only the factor on the nominal weight is kept, rounded to float32: see the module doc.
    const factor = Math.fround(clamp(Math.exp(x[i]!), 1e-30, 1e30));
    for (const m of ms) rates[m] = weights[m]! * factor;
  });
  return { rates, tiers, targets, expected: model.inclusion(rates, tiers) };
}

/**
 * Solves F(x) = 0 for x in R^g, where `evaluate(x)` returns F(x) (here: logit of achieved minus
 * logit of target probability per group) and whether x is good enough. Broyden's method with a
 * backtracking line search on |F|²: the initial inverse Jacobian is I/2, because a group's
 * log-odds move about one for one with its log-rate while the others' move against it, so a
 * full fixed-point step overshoots; the rank-1 updates learn those cross effects. A step that
 * fails to reduce |F|² even when cut to 1/8 resets the approximation and takes the damped
 * fixed-point step. Deterministic: a fixed sequence of arithmetic, and at most MAX_EVALUATIONS
 * evaluations. Returns the last x evaluated.
 */
function solve(g: number, evaluate: (x: Float64Array) => { residual: Float64Array; done: boolean }): Float64Array {
  const inverse = new InverseJacobian(g);
  const x = new Float64Array(g);
  const trial = new Float64Array(g);
  const direction = new Float64Array(g);
  const sizeOf = (f: Float64Array): number => {
    let size = 0;
    for (const v of f) size += v * v;
    return Number.isNaN(size) ? Number.POSITIVE_INFINITY : size;
  };
  let current = evaluate(x);
  let size = sizeOf(current.residual);
  let evaluations = 1;
  while (!current.done && evaluations < MAX_EVALUATIONS) {
    inverse.apply(current.residual, direction);
    let next: { residual: Float64Array; done: boolean } | undefined;
    let nextSize = 0;
    let step = stepLimit(direction);
    for (let cut = 0; cut < 4 && evaluations < MAX_EVALUATIONS; cut++, step /= 2) {
      for (let i = 0; i < g; i++) trial[i] = x[i]! - step * direction[i]!;
      const candidate = evaluate(trial);
      evaluations++;
      nextSize = sizeOf(candidate.residual);
      if (nextSize < size * (1 - 1e-4 * step)) {
        next = candidate;
        break;
      }
    }
    if (next === undefined) {
      inverse.reset();
      inverse.apply(current.residual, direction);
      step = stepLimit(direction);
      for (let i = 0; i < g; i++) trial[i] = x[i]! - step * direction[i]!;
      next = evaluate(trial);
      evaluations++;
      nextSize = sizeOf(next.residual);
    }
    inverse.update(trial, x, next.residual, current.residual);
    x.set(trial);
    current = next;
    size = nextSize;
  }
  return x;
}

/** The step factor that keeps every component of `direction` within MAX_STEP. */
function stepLimit(direction: Float64Array): number {
  let longest = 0;
  for (const d of direction) longest = Math.max(longest, Math.abs(d));
  return longest > MAX_STEP ? MAX_STEP / longest : 1;
}

/**
 * Broyden's approximation H of the inverse Jacobian, starting at I/2. Beyond
 * MAX_BROYDEN_UNKNOWNS (a g×g matrix would get large) it stays I/2: plain damped fixed-point
 * steps, slower but still convergent.
 */
class InverseJacobian {
  readonly #g: number;
  readonly #h: Float64Array | undefined;
  readonly #hy: Float64Array;

  constructor(g: number) {
    this.#g = g;
    this.#h = g <= MAX_BROYDEN_UNKNOWNS ? new Float64Array(g * g) : undefined;
    this.#hy = new Float64Array(g);
    this.reset();
  }

  reset(): void {
    const h = this.#h;
    if (h === undefined) return;
    const g = this.#g;
    h.fill(0);
    for (let i = 0; i < g; i++) h[i * g + i] = 0.5;
  }

  /** out = H f. */
  apply(f: Float64Array, out: Float64Array): void {
    const h = this.#h;
    const g = this.#g;
    for (let i = 0; i < g; i++) {
      if (h === undefined) {
        out[i] = 0.5 * f[i]!;
        continue;
      }
      let s = 0;
      for (let j = 0; j < g; j++) s += h[i * g + j]! * f[j]!;
      out[i] = s;
    }
  }

  /** "Good" Broyden update for the step s = x1 - x0, y = f1 - f0: H += (s - H y)(sᵀ H) / (sᵀ H y). */
  update(x1: Float64Array, x0: Float64Array, f1: Float64Array, f0: Float64Array): void {
    const h = this.#h;
    if (h === undefined) return;
    const g = this.#g;
    const hy = this.#hy;
    let denom = 0;
    for (let i = 0; i < g; i++) {
      let s = 0;
      for (let j = 0; j < g; j++) s += h[i * g + j]! * (f1[j]! - f0[j]!);
      hy[i] = s;
      denom += (x1[i]! - x0[i]!) * s;
    }
    if (!Number.isFinite(denom) || Math.abs(denom) < 1e-300) return;
    for (let j = 0; j < g; j++) {
      let sh = 0;
      for (let i = 0; i < g; i++) sh += (x1[i]! - x0[i]!) * h[i * g + j]!;
      for (let i = 0; i < g; i++) h[i * g + j] = h[i * g + j]! + ((x1[i]! - x0[i]! - hy[i]!) * sh) / denom;
    }
  }
}

/** Probability, per member, of being in a preference list, under one walk's rules. */
interface InclusionModel {
  /** Per member; NaN where the model does not say (outside tier 1 in the fill model). */
  inclusion(rates: Float64Array, tiers: Uint8Array): Float64Array;
  /** The fit's unknowns: groups of tier-1 members whose rates move by one common factor. */
  groups(tiers: Uint8Array): number[][];
  /** A group's probability (of one member, or of the group as a whole) from per-member values. */
  share(values: Float64Array, group: readonly number[]): number;
}

/**
 * zones >= N: the walk takes the first member of each of the first N zones to arrive. A zone
 * arrives at the time of its first member, an exponential with rate Σ rates; a zone is in the
 * list iff fewer than N other zones arrived before it, and then each of its members is its
 * first with probability rate/Σ rates. So the fit has one unknown per zone (its members keep
 * the ratios of their weights), and represented zones simply take places ahead of the race.
 */
class ZoneRaceModel implements InclusionModel {
  readonly #replicas: number;
  readonly #membersOf: number[][];

  constructor(input: PlacementInput) {
    this.#replicas = input.replicas;
    this.#membersOf = groupByZone(input.zoneOf, input.zones);
  }

  groups(tiers: Uint8Array): number[][] {
    return this.#membersOf.filter((ms) => tiers[ms[0]!] === TIER_RACE);
  }

  /** The zone's probability of being in a list. */
  share(values: Float64Array, group: readonly number[]): number {
    let s = 0;
    for (const m of group) s += values[m]!;
    return s;
  }

  inclusion(rates: Float64Array, tiers: Uint8Array): Float64Array {
    const zones = this.#membersOf.length;
    const zoneRate = new Float64Array(zones);
    const racing: number[] = [];
    let places = this.#replicas;
    this.#membersOf.forEach((ms, z) => {
      for (const m of ms) zoneRate[z] = zoneRate[z]! + rates[m]!;
      if (tiers[ms[0]!] === TIER_RACE) racing.push(z);
      else places--;
    });
    const zoneIn = new Float64Array(zones).fill(1);
    if (places > 0 && racing.length > 0) {
      // Counts of other racing zones arrived, saturating: index `places` means ">= places",
      // which is exactly "excluded".
      const width = places + 1;
      const r = racing.length;
      const factors = new Float64Array(r * width);
      const prefix = new Float64Array((r + 1) * width);
      const suffix = new Float64Array((r + 1) * width);
      const others = new Float64Array(width);
      const excluded = (t: number, out: Float64Array): void => {
        for (let i = 0; i < r; i++) {
          const arrived = -Math.expm1(-zoneRate[racing[i]!]! * t);
          factors.fill(0, i * width, (i + 1) * width);
          factors[i * width] = 1 - arrived;
          factors[i * width + 1] = factors[i * width + 1]! + arrived;
        }
        allButOne(factors, r, width, prefix, suffix);
        for (let i = 0; i < r; i++) {
          convolve(prefix, i * width, suffix, (i + 1) * width, others, 0, width);
          out[i] = others[places]!;
        }
      };
      const rateOf = racing.map((z) => zoneRate[z]!);
      const out = integrateExclusion(rateOf, excluded);
      racing.forEach((z, i) => {
        zoneIn[z] = 1 - out[i]!;
      });
    }
    const result = new Float64Array(rates.length);
    this.#membersOf.forEach((ms, z) => {
      for (const m of ms) result[m] = (zoneIn[z]! * rates[m]!) / zoneRate[z]!;
    });
    return result;
  }
}

/**
 * zones < N: the walk takes the first member of every zone, then the first N - zones of the
 * rest. Member m, arriving at t, is left out iff another member of its zone arrived before t
 * and at least N - zones "extra" members (arrived, but not first in their zone) did, counting
 * its zone's. Per t, a zone's arrival count is a product of binomials (one per class: members
 * of one zone with one weight, hence one rate and tier), truncated to the few counts that
 * matter; the fit has one unknown per class.
 */
class FillRaceModel implements InclusionModel {
  readonly #replicas: number;
  readonly #zones: number;
  readonly #classOf: Int32Array;
  readonly #classMembers: number[][];
  readonly #classZone: number[];
  readonly #zoneClasses: number[][];

  constructor(input: PlacementInput) {
    const { weights, zoneOf, zones } = input;
    this.#replicas = input.replicas;
    this.#zones = zones;
    this.#classOf = new Int32Array(weights.length);
    this.#classMembers = [];
    this.#classZone = [];
    this.#zoneClasses = Array.from({ length: zones }, () => []);
    const byKey = new Map<string, number>();
    for (let m = 0; m < weights.length; m++) {
      const key = `${zoneOf[m]} ${weights[m]}`;
      let c = byKey.get(key);
      if (c === undefined) {
        c = this.#classMembers.length;
        byKey.set(key, c);
        this.#classMembers.push([]);
        this.#classZone.push(zoneOf[m]!);
        this.#zoneClasses[zoneOf[m]!]!.push(c);
      }
      this.#classMembers[c]!.push(m);
      this.#classOf[m] = c;
    }
  }

  groups(tiers: Uint8Array): number[][] {
    return this.#classMembers.filter((ms) => tiers[ms[0]!] === TIER_RACE);
  }

  /** Every member of a class has the same probability. */
  share(values: Float64Array, group: readonly number[]): number {
    return values[group[0]!]!;
  }

  inclusion(rates: Float64Array, tiers: Uint8Array): Float64Array {
    const zones = this.#zones;
    const fill = this.#replicas - zones;
    const classes = this.#classMembers.length;
    const rate = new Float64Array(classes);
    const tier = new Uint8Array(classes);
    const size = new Int32Array(classes);
    this.#classMembers.forEach((ms, c) => {
      rate[c] = rates[ms[0]!]!;
      tier[c] = tiers[ms[0]!]!;
      size[c] = ms.length;
    });
    const racing: number[] = [];
    for (let c = 0; c < classes; c++) if (tier[c] === TIER_RACE) racing.push(c);
    // (A class's members share a tier: replicaTargets gives equal zone and weight equal tiers.)
    const result = new Float64Array(rates.length).fill(Number.NaN);
    if (racing.length === 0) return result;

    // Zone counts saturate at cap = fill + 1 ("more than fill"); extras at fill.
    const cap = fill + 1;
    const width = cap + 1;
    const extraWidth = fill + 1;
    const zoneClasses = this.#zoneClasses;
    // Class factors, per zone in zone order, with one slot of prefix/suffix space per zone.
    const zoneStart = new Int32Array(zones + 1);
    for (let z = 0; z < zones; z++) zoneStart[z + 1] = zoneStart[z]! + zoneClasses[z]!.length + 1;
    const factors = new Float64Array(zoneStart[zones]! * width);
    const lessOne = new Float64Array(classes * width);
    const prefix = new Float64Array(zoneStart[zones]! * width);
    const suffix = new Float64Array(zoneStart[zones]! * width);
    const extras = new Float64Array(zones * extraWidth);
    const extrasPrefix = new Float64Array((zones + 1) * extraWidth);
    const extrasSuffix = new Float64Array((zones + 1) * extraWidth);
    const elsewhere = new Float64Array(zones * extraWidth);
    const partial = new Float64Array(width);
    const own = new Float64Array(width);
    const positionInZone = new Int32Array(classes);
    for (const cs of zoneClasses) {
      for (let i = 0; i < cs.length; i++) positionInZone[cs[i]!] = i;
    }

    const represented = zoneClasses.map((cs) => cs.every((c) => tier[c] === TIER_ZONE));
    const excluded = (t: number, out: Float64Array): void => {
      for (let z = 0; z < zones; z++) {
        extras.fill(0, z * extraWidth, (z + 1) * extraWidth);
        // A represented zone has exactly one member in (its representative): no extras.
        if (represented[z]) {
          extras[z * extraWidth] = 1;
          continue;
        }
        const cs = zoneClasses[z]!;
        const base = zoneStart[z]!;
        for (let i = 0; i < cs.length; i++) {
          const c = cs[i]!;
          const arrived = tier[c] === TIER_FIRST ? 1 : -Math.expm1(-rate[c]! * t);
          binomial(size[c]!, arrived, cap, factors, (base + i) * width);
          if (tier[c] === TIER_RACE) binomial(size[c]! - 1, arrived, cap, lessOne, c * width);
        }
        const from = base * width;
        allButOne(factors.subarray(from), cs.length, width, prefix.subarray(from), suffix.subarray(from));
        // The zone's whole count is prefix[n]; its extras are max(count - 1, 0).
        const all = (base + cs.length) * width;
        extras[z * extraWidth] = prefix[all]! + prefix[all + 1]!;
        for (let e = 1; e <= fill; e++) extras[z * extraWidth + e] = prefix[all + e + 1]!;
      }
      allButOne(extras, zones, extraWidth, extrasPrefix, extrasSuffix);
      for (let z = 0; z < zones; z++) {
        const at = z * extraWidth;
        convolve(extrasPrefix, at, extrasSuffix, at + extraWidth, elsewhere, at, extraWidth);
        // Turn it into tails in place: elsewhere[e] = P(extras elsewhere > e).
        let above = 0;
        for (let e = fill; e >= 0; e--) {
          const here = elsewhere[at + e]!;
          elsewhere[at + e] = above;
          above += here;
        }
      }
      racing.forEach((c, i) => {
        const z = this.#classZone[c]!;
        const at = zoneStart[z]! + positionInZone[c]!;
        convolve(prefix, at * width, lessOne, c * width, partial, 0, width);
        convolve(partial, 0, suffix, (at + 1) * width, own, 0, width);
        // j others of its zone before it: left out iff (j - 1) + extras elsewhere >= fill.
        let p = own[cap]!;
        for (let j = 1; j <= fill; j++) p += own[j]! * elsewhere[z * extraWidth + fill - j]!;
        out[i] = p;
      });
    };
    const out = integrateExclusion(
      racing.map((c) => rate[c]!),
      excluded,
    );
    racing.forEach((c, i) => {
      for (const m of this.#classMembers[c]!) result[m] = 1 - out[i]!;
    });
    return result;
  }
}

/**
 * For racers with the given rates: P(left out) = ∫ rate·e^{-rate·t} · excluded(t) dt, where
 * `excluded(t, out)` writes each racer's probability of being left out when it arrives at t.
 * The part excluded(0) (caused by tier-0 members, there from the start) integrates to itself;
 * the rest vanishes at least like t as t → 0, so a trapezoid sum over ln t from 14 units
 * below the fastest time scale to e^{-48} beyond the slowest is accurate to ~1e-12.
 */
function integrateExclusion(
  rates: readonly number[],
  excluded: (t: number, out: Float64Array) => void,
): Float64Array {
  const n = rates.length;
  const atZero = new Float64Array(n);
  excluded(0, atZero);
  // Time scales of the racers; a rate that underflowed to 0 (absurd weight ratios) never
  // arrives, so it is left out, and does not stretch the grid.
  let lo = Number.POSITIVE_INFINITY;
  let hi = 0;
  for (const r of rates) {
    if (r > 0 && r < lo) lo = r;
    if (r > hi) hi = r;
  }
  if (!(hi > 0 && hi < Number.POSITIVE_INFINITY)) return Float64Array.from(rates, () => 1);
  const start = -Math.log(hi) - LEFT_TAIL;
  const end = -Math.log(lo) + RIGHT_TAIL;
  const total = new Float64Array(n);
  const at = new Float64Array(n);
  for (let s = 0; start + s * STEP <= end; s++) {
    const t = Math.exp(start + s * STEP);
    excluded(t, at);
    for (let i = 0; i < n; i++) {
      const rt = rates[i]! * t;
      total[i] = total[i]! + STEP * rt * Math.exp(-rt) * (at[i]! - atZero[i]!);
    }
  }
  for (let i = 0; i < n; i++) total[i] = total[i]! + atZero[i]!;
  return total;
}

/** Binomial(n, p) counts 0..cap into out[at..], index cap holding P(count >= cap). */
function binomial(n: number, p: number, cap: number, out: Float64Array, at: number): void {
  out.fill(0, at, at + cap + 1);
  if (p <= 0 || n === 0) {
    out[at] = 1;
    return;
  }
  if (p >= 1) {
    out[at + Math.min(n, cap)] = 1;
    return;
  }
  const q = 1 - p;
  let term = q ** n;
  let below = 0;
  for (let j = 0; j < cap && j <= n; j++) {
    out[at + j] = term;
    below += term;
    term = (term * (n - j) * p) / ((j + 1) * q);
  }
  if (n >= cap) out[at + cap] = Math.max(0, 1 - below);
}

/** out[oo..] = distribution of the sum of a[ao..] and b[bo..], saturating at width - 1. */
function convolve(
  a: Float64Array,
  ao: number,
  b: Float64Array,
  bo: number,
  out: Float64Array,
  oo: number,
  width: number,
): void {
  const top = width - 1;
  out.fill(0, oo, oo + width);
  for (let i = 0; i < width; i++) {
    const ai = a[ao + i]!;
    if (ai === 0) continue;
    for (let j = 0; j < width; j++) {
      const s = Math.min(i + j, top);
      out[oo + s] = out[oo + s]! + ai * b[bo + j]!;
    }
  }
}

/**
 * Prefix and suffix products of n distributions (each `width` wide, back to back in
 * `factors`): prefix[i] = factors 0..i-1, suffix[i] = factors i..n-1, for i = 0..n. The
 * convolution of all but factor i is then prefix[i] ⊗ suffix[i + 1].
 */
function allButOne(factors: Float64Array, n: number, width: number, prefix: Float64Array, suffix: Float64Array): void {
  prefix.fill(0, 0, width);
  prefix[0] = 1;
  for (let i = 0; i < n; i++) convolve(prefix, i * width, factors, i * width, prefix, (i + 1) * width, width);
  suffix.fill(0, n * width, (n + 1) * width);
  suffix[n * width] = 1;
  for (let i = n - 1; i >= 0; i--) convolve(factors, i * width, suffix, (i + 1) * width, suffix, i * width, width);
}

/**
 * t_i = min(1, λ·w_i) with Σ t_i = total (total <= count): the largest weights are capped at
 * 1 one at a time, in a fixed order, until λ·w fits under 1 for the rest.
 */
function waterFill(w: readonly number[], total: number): number[] {
  const order = w.map((_, i) => i).sort((a, b) => w[b]! - w[a]! || a - b);
  const out = new Array<number>(w.length).fill(0);
  let rest = sum(w);
  let room = total;
  let i = 0;
  for (; i < order.length && room > 0; i++) {
    const m = order[i]!;
    if ((room * w[m]!) / rest < 1 - CAP_SLACK) break;
    out[m] = 1;
    room -= 1;
    // Summed again rather than subtracted: no cancellation when one weight dwarfs the rest.
    rest = 0;
    for (let j = i + 1; j < order.length; j++) rest += w[order[j]!]!;
  }
  for (; i < order.length; i++) {
    const m = order[i]!;
    out[m] = room > 0 ? (room * w[m]!) / rest : 0;
  }
  return out;
}

/** Weights divided by the largest (so the largest is 1). */
function relative(weights: Float64Array): Float64Array {
  let largest = 0;
  for (const w of weights) if (w > largest) largest = w;
  return weights.map((w) => w / largest);
}

function groupByZone(zoneOf: Uint16Array, zones: number): number[][] {
  const out: number[][] = Array.from({ length: zones }, () => []);
  for (let m = 0; m < zoneOf.length; m++) out[zoneOf[m]!]!.push(m);
  return out;
}

/** Largest |got - want| over tier-1 members (all members without tiers); NaN counts as worst. */
function maxError(got: Float64Array, want: Float64Array, tiers: Uint8Array | undefined): number {
  let worst = 0;
  for (let m = 0; m < want.length; m++) {
    if (tiers !== undefined && tiers[m] !== TIER_RACE) continue;
    const e = Math.abs(got[m]! - want[m]!);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Number.POSITIVE_INFINITY : e;
  }
  return worst;
}

function logit(p: number): number {
  const q = clamp(p, 1e-300, 1 - 1e-16);
  return Math.log(q) - Math.log1p(-q);
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), hi);
}

function sum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}
