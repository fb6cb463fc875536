/**
 * Randomness as an input. Production uses crypto-quality randomness; tests and simulations
 * use a seeded generator so that a failing run prints its seed and replays exactly.
 */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** `len` random bytes. */
  bytes(len: number): Uint8Array;
}

import { randomFillSync } from 'node:crypto';

/** Bytes drawn from the CSPRNG at a time for small `bytes()` calls. */
const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
let poolUsed = POOL_BYTES;

/**
 * `len` bytes from the CSPRNG. Small requests are served from a pool refilled 4 KiB at a
 * time: every key first written on a replica gets a fresh actor from 6 random bytes, and a
 * call into the CSPRNG per key cost ~1 % of a node's CPU under a load of new keys. Each
 * request gets its own copy, never bytes another request saw.
 */
function cryptoBytes(len: number): Uint8Array {
  if (len > POOL_BYTES / 8) return randomFillSync(new Uint8Array(len));
  if (poolUsed + len > POOL_BYTES) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  const out = pool.slice(poolUsed, poolUsed + len);
  poolUsed += len;
  return out;
}

/** Math.random-backed generator for production jitter; `bytes` uses the CSPRNG. */
export const systemRandom: Random = {
  next: () => Math.random(),
  int: (n) => Math.floor(Math.random() * n),
  bytes: cryptoBytes,
};

/**
 * A small, fast, seeded PRNG (mulberry32). Not for secrets; for replayable simulations.
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    bytes: (len) => {
      const out = new Uint8Array(len);
      for (let i = 0; i < len; i++) out[i] = Math.floor(next() * 256);
      return out;
    },
  };
}
