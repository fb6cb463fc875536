/**
 * Reading stored copies a bounded number of bytes at a time: from a peer (aae-fetch, whose
 * replies stop at the responder's byte bound) and from the local store. Values may be as
 * large as `--max-value-bytes` (up to 64 MiB), so a batch of a few hundred keys must never be
 * read, sent or held whole.
 */
import { RingkvError } from '../errors.js';
import type { Store } from '../storage/index.js';
import { decodeFetchReplyParts, encodeFetchRequest, type KeyRef } from './messages.js';

/** Keys of the first store read of a run, before any copy's size is known. */
const FIRST_READ_KEYS = 8;
/** Keys per store read at most (small copies: few reads, each one thread-pool round trip). */
const MAX_READ_KEYS = 64;

/**
 * Ask a peer for the copies of `refs` (aae-fetch), in as many requests as its byte bound
 * takes, and hand each reply's objects to `take` (`from`: the index in `refs` of the first)
 * before asking for the rest, so that one reply's copies at a time are held. `send` sends one
 * aae-fetch body to the peer and returns its reply.
 *
 * Each reply must carry at least one object (the responder always sends one, whatever its
 * size), so this ends after at most `refs.length` requests whatever the peer answers.
 */
export async function fetchCopies(
  send: (body: Uint8Array) => Promise<Uint8Array>,
  checksum: string,
  refs: readonly KeyRef[],
  take: (from: number, objects: readonly (Uint8Array | undefined)[]) => Promise<void> | void,
): Promise<void> {
  for (let from = 0; from < refs.length; ) {
    const rest = from === 0 ? refs : refs.slice(from);
    const { objects, deferred } = decodeFetchReplyParts(await send(encodeFetchRequest(checksum, rest)));
    if (objects.length + deferred !== rest.length) throw new RingkvError('INTERNAL', 'fetch reply length mismatch');
    if (objects.length === 0) throw new RingkvError('INTERNAL', 'fetch reply deferred every object');
    await take(from, objects);
    from += objects.length;
  }
}

/**
 * Read the `obj` copies of `keys` in order and hand each to `take` (its index, its bytes or
 * undefined) until `take` returns false. The store is asked for a few keys at a time, fewer
 * once large copies have been seen (about `bytes` worth per read; at least one key), so that
 * what is read and not yet handed on stays near `bytes`.
 */
export async function readCopies(
  store: Store,
  keys: readonly Uint8Array[],
  bytes: number,
  take: (index: number, copy: Uint8Array | undefined) => boolean | Promise<boolean>,
): Promise<void> {
  let largest = 0;
  for (let i = 0; i < keys.length; ) {
    const n = largest === 0 ? FIRST_READ_KEYS : Math.max(1, Math.min(MAX_READ_KEYS, Math.floor(bytes / largest)));
    const chunk = keys.slice(i, i + n);
    const copies = await store.getMany('obj', chunk);
    for (let j = 0; j < chunk.length; j++) {
      const copy = copies[j];
      if (copy !== undefined && copy.length > largest) largest = copy.length;
      if (!(await take(i + j, copy))) return;
    }
    i += chunk.length;
  }
}
