/** Shared fast-check arbitraries and helpers for the ring tests. */
import fc from 'fast-check';
import type { Ring, RingMember } from '../../../src/ring/index.js';

/** Member ids: arbitrary well-formed strings and realistic `node-<n>` names. */
export const idArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }),
  fc.nat({ max: 10_000 }).map((i) => `node-${i}`),
);

export interface MembersOptions {
  readonly minLength: number;
  readonly maxLength: number;
  /** Zone labels to draw from (default: one zone). */
  readonly zones?: readonly string[];
  /** Weights to draw from (default: 1). */
  readonly weights?: readonly number[];
}

/** Members with unique ids, zones and weights drawn from the given sets. */
export function membersArb(opts: MembersOptions): fc.Arbitrary<RingMember[]> {
  const zones = opts.zones ?? ['default'];
  const weights = opts.weights ?? [1];
  return fc.uniqueArray(
    fc.record({ id: idArb, zone: fc.constantFrom(...zones), weight: fc.constantFrom(...weights) }),
    { minLength: opts.minLength, maxLength: opts.maxLength, selector: (m) => m.id },
  );
}

/** max/mean of a list of shares. */
export function maxOverMean(shares: readonly number[]): number {
  const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
  return Math.max(...shares) / mean;
}

export function distinctZones(members: readonly RingMember[]): number {
  return new Set(members.map((m) => m.zone)).size;
}

/** Every member's primary and replica share. */
export function shares(ring: Ring): { primary: number[]; replica: number[] } {
  return {
    primary: ring.members.map((m) => ring.primaryShare(m.id)),
    replica: ring.members.map((m) => ring.replicaShare(m.id)),
  };
}
