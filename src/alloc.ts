/**
 * Byte arrays for the request path without a malloc each. V8 keeps a typed array of up to 64
 * bytes inside its own heap, but a larger one gets a separately malloc'd backing store that
 * the garbage collector must register, sweep and free one by one; profiles of a loaded node
 * showed that bookkeeping (malloc, free, the backing-store registry and sweeper) at a tenth of
 * all CPU. Mid-sized arrays are therefore carved out of Node's shared 8 KiB Buffer pool.
 *
 * The result is always a plain Uint8Array (a view, never a Buffer, so callers see one type)
 * whose contents are UNINITIALISED: a caller must write every byte it later exposes (use
 * `subarray` to expose only what it wrote). A long-lived small view keeps its 8 KiB pool
 * chunk alive, so this is for short-lived request data, not for caches.
 */
import { Buffer } from 'node:buffer';

/** Largest size V8 allocates on its own heap (its typed_array_max_size_in_heap). */
const ON_HEAP_MAX = 64;
/** Buffer.allocUnsafe pools sizes below half its pool (Buffer.poolSize / 2 = 4 KiB). */
const POOLED_MAX = Buffer.poolSize >>> 1;

export function allocBytes(size: number): Uint8Array {
  if (size <= ON_HEAP_MAX || size >= POOLED_MAX) return new Uint8Array(size);
  const b = Buffer.allocUnsafe(size);
  return new Uint8Array(b.buffer, b.byteOffset, size);
}
