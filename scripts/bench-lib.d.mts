/** Types of the parts of bench-lib.mjs that tests use (plain JavaScript so the bench scripts run without a build). */
import type { Pool } from 'undici';

export const OK: 'ok';
export const MISS: 'miss';
export const SIBLINGS: 'siblings';

export interface KeyState {
  keys: number;
  valueSize: number;
  names: string[];
  value: Buffer;
  contexts: (string | undefined)[];
  written: Uint8Array;
  extra: unknown;
}

export function makeKeyState(opts: { prefix: string; keys: number; valueSize: number }): KeyState;

/** One backend's PUT and GET of key `i`: OK, MISS, SIBLINGS, or a failure label (a status or an error name). */
export interface Protocol {
  name: string;
  put(pool: Pool, state: KeyState, i: number): Promise<string | number>;
  get(pool: Pool, state: KeyState, i: number): Promise<string | number>;
}

export const protocols: Record<'ringkv' | 'baseline' | 'replicated' | 'etcd', Protocol>;
