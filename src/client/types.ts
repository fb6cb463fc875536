/**
 * Public types of the SDK (SPEC §3).
 */
import type { Clock } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { Timers } from '../runtime/timers.js';

/** One concurrent version of a value. */
export type Sibling = { value: Uint8Array; contentType: string; lastModified: Date };

/** A read or write quorum: a replica count `1..n`, or a name the server resolves against its `n`. */
export type Quorum = number | 'one' | 'quorum' | 'all';

/** What `get` returns. `context` is present whenever the key has (or had, for a tombstone) a version. */
export interface GetResult {
  found: boolean;
  siblings: Sibling[];
  context?: string;
}

/** What `put` returns: the context of the version just written. */
export interface PutResult {
  context: string;
}

/** What `delete` returns: the tombstone's context, if the server sent one. */
export interface DeleteResult {
  context?: string;
}

/** What `update` returns: the written version's context and the bytes that were written. */
export interface UpdateResult {
  context: string;
  value: Uint8Array;
}

/** Merges siblings into one value. Called only with two or more siblings by `update`. */
export type Resolver = (siblings: Sibling[]) => Uint8Array | string;

/** Computes the next value from the current one (`undefined` when the key does not exist). */
export type Mutator = (current: Uint8Array | undefined) => Uint8Array | string | Promise<Uint8Array | string>;

/** Options every call takes. */
export interface CallOptions {
  /** Budget of the whole call, retries and backoff included. Default: the client's `timeoutMs`. */
  timeoutMs?: number | undefined;
  /** Abort the call. An aborted write has an unknown outcome. */
  signal?: AbortSignal | undefined;
  /** Retries after the first attempt. Default: the client's `retries`. */
  retries?: number | undefined;
}

export interface GetOptions extends CallOptions {
  r?: Quorum | undefined;
}

export interface WriteOptions extends CallOptions {
  /** The context from an earlier read: the versions this write supersedes. */
  context?: string | undefined;
  w?: Quorum | undefined;
  /**
   * Also retry when the outcome of an attempt is unknown (timeout, 503, connection lost after
   * sending). Default: true when `context` is given, false otherwise. See docs/client.md.
   */
  retryUnsafe?: boolean | undefined;
}

export interface PutOptions extends WriteOptions {
  /** Stored and returned with the value. Default: `text/plain; charset=utf-8` for strings, `application/octet-stream` for bytes. */
  contentType?: string | undefined;
}

export type DeleteOptions = WriteOptions;

export interface UpdateOptions extends CallOptions {
  /** Merges siblings when the read finds more than one. Default: `resolvers.lastWriterWins`. */
  resolve?: Resolver | undefined;
  /** Content type of the written value. Default: that of the newest sibling read, else as for `put`. */
  contentType?: string | undefined;
  r?: Quorum | undefined;
  w?: Quorum | undefined;
  /** As for `put`; default true, because `update` always resolves what it reads (see docs/client.md). */
  retryUnsafe?: boolean | undefined;
}

/** Circuit breaker settings, one breaker per node. */
export interface BreakerOptions {
  /** Consecutive failures that open the breaker. Default 5. */
  failureThreshold?: number | undefined;
  /** Open period after the first trip; doubles with each trip in a row, jittered to 50-100%. Default 1000. */
  openMs?: number | undefined;
  /** Longest open period. Default 30000. */
  maxOpenMs?: number | undefined;
}

/** Backoff between retries: full jitter, `random(0, min(maxMs, baseMs * 2^(retry-1)))`. */
export interface BackoffOptions {
  /** Default 50. */
  baseMs?: number | undefined;
  /** Default 2000. */
  maxMs?: number | undefined;
}

export interface ClientOptions {
  /** Node base URLs, e.g. `http://127.0.0.1:8081`. At least one. */
  nodes: string[];
  /** Default budget of a whole call, retries included. Default 10000. */
  timeoutMs?: number | undefined;
  /** Cap on one attempt, so a hung node leaves time to fail over. Default 4000. */
  attemptTimeoutMs?: number | undefined;
  /** TCP connect timeout; a connect timeout proves the request was not sent. Default 1000. */
  connectTimeoutMs?: number | undefined;
  /** Retries after the first attempt. Default 3. */
  retries?: number | undefined;
  backoff?: BackoffOptions | undefined;
  /** Per-node circuit breaker settings, or `false` to disable. */
  breaker?: BreakerOptions | false | undefined;
  /** Keep the node list in sync with `GET /v1/cluster` (members that are `up`). Default false. */
  discover?: boolean | undefined;
  /** Pause between discovery refreshes. Default 30000. */
  discoverIntervalMs?: number | undefined;
  /** Default read quorum (omitted: the server's default). */
  r?: Quorum | undefined;
  /** Default write quorum (omitted: the server's default). */
  w?: Quorum | undefined;
  /** Client-wide default for `retryUnsafe` on writes (see WriteOptions). */
  retryUnsafe?: boolean | undefined;
  /** Keep-alive connections per node. Default 16. */
  connectionsPerNode?: number | undefined;
  /** Injected time and randomness (tests, simulations). Default: the real ones. */
  clock?: Clock | undefined;
  timers?: Timers | undefined;
  random?: Random | undefined;
}

/** A member as listed by `GET /v1/cluster`. Only `id`, `address`, `zone`, `status` are guaranteed. */
export interface ClusterMember {
  id: string;
  address: string;
  zone?: string;
  status: 'up' | 'down' | 'joining' | 'leaving' | string;
  weight?: number;
  ownership?: number;
  [field: string]: unknown;
}

/** The `GET /v1/cluster` document: one node's view of the cluster. */
export interface ClusterView {
  node?: string;
  members: ClusterMember[];
  ring?: Record<string, unknown>;
  hints?: { pending?: number; [field: string]: unknown };
  transfers?: { pending?: number; [field: string]: unknown };
  [field: string]: unknown;
}
