/**
 * The ringkv client (SPEC §3): get / put / delete / update over HTTP API v1, with failover,
 * retries, per-node circuit breakers and a timeout on every call (composed in dispatch.ts).
 */
import type { Clock } from '../runtime/clock.js';
import { systemClock } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import { systemRandom } from '../runtime/random.js';
import type { Timers } from '../runtime/timers.js';
import { systemTimers } from '../runtime/timers.js';
import { CONTEXT_HEADER, decodeGet, decodeJson, decodeWrite } from './decode.js';
import { Discovery } from './discovery.js';
import { type CallPolicy, Dispatcher } from './dispatch.js';
import { InvalidArgumentError, ProtocolError, TimeoutError } from './errors.js';
import { NodeSet } from './node-set.js';
import { NodePools } from './pools.js';
import { lastWriterWins } from './resolvers.js';
import type {
  BreakerOptions,
  CallOptions,
  ClientOptions,
  ClusterView,
  DeleteOptions,
  DeleteResult,
  GetOptions,
  GetResult,
  Mutator,
  PutOptions,
  PutResult,
  Quorum,
  Sibling,
  UpdateOptions,
  UpdateResult,
} from './types.js';
import {
  checkContentType,
  checkContext,
  checkCount,
  checkMs,
  checkSignal,
  checkTimerMs,
  encodeKey,
  nodeOrigin,
  quorumParam,
  toBytes,
} from './validate.js';

/** Defaults of ClientOptions. */
export const CLIENT_DEFAULTS = {
  timeoutMs: 10_000,
  attemptTimeoutMs: 4_000,
  connectTimeoutMs: 1_000,
  retries: 3,
  connectionsPerNode: 16,
  discoverIntervalMs: 30_000,
} as const;

const TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8';
const BYTES_CONTENT_TYPE = 'application/octet-stream';
/** Least pause between discovery refreshes triggered by node failures. */
const DISCOVERY_MIN_GAP_MS = 1_000;

export class Client {
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly defaultR: Quorum | undefined;
  private readonly defaultW: Quorum | undefined;
  private readonly retryUnsafe: boolean | undefined;
  private readonly nodeSet: NodeSet;
  /** The nodes the client was configured with (the fallback of node discovery). */
  private readonly seeds: readonly string[];
  private readonly pools: NodePools;
  private readonly dispatcher: Dispatcher;
  private readonly discovery: Discovery | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: ClientOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object');
    if (!Array.isArray(options.nodes) || options.nodes.length === 0)
      throw new InvalidArgumentError('nodes', 'must be a non-empty array of node URLs');
    const seeds = options.nodes.map(nodeOrigin);
    this.seeds = seeds;
    this.clock = options.clock ?? systemClock;
    const timers: Timers = options.timers ?? systemTimers;
    this.timers = timers;
    const random: Random = options.random ?? systemRandom;
    this.timeoutMs = checkMs('timeoutMs', options.timeoutMs) ?? CLIENT_DEFAULTS.timeoutMs;
    this.retries = checkCount('retries', options.retries) ?? CLIENT_DEFAULTS.retries;
    quorumParam('r', options.r);
    quorumParam('w', options.w);
    this.defaultR = options.r;
    this.defaultW = options.w;
    if (options.retryUnsafe !== undefined && typeof options.retryUnsafe !== 'boolean')
      throw new InvalidArgumentError('retryUnsafe', 'must be a boolean');
    this.retryUnsafe = options.retryUnsafe;
    const breaker = checkBreaker(options.breaker);
    const backoff = {
      baseMs: checkTimerMs('backoff.baseMs', options.backoff?.baseMs),
      maxMs: checkTimerMs('backoff.maxMs', options.backoff?.maxMs),
    };

    this.nodeSet = new NodeSet({ clock: this.clock, random }, { nodes: seeds, breaker });
    this.pools = new NodePools({
      connectTimeoutMs: checkTimerMs('connectTimeoutMs', options.connectTimeoutMs) ?? CLIENT_DEFAULTS.connectTimeoutMs,
      connections: checkCount('connectionsPerNode', options.connectionsPerNode) || CLIENT_DEFAULTS.connectionsPerNode,
    });
    this.dispatcher = new Dispatcher(
      { clock: this.clock, timers, random, pools: this.pools, nodes: this.nodeSet },
      {
        attemptTimeoutMs: checkTimerMs('attemptTimeoutMs', options.attemptTimeoutMs) ?? CLIENT_DEFAULTS.attemptTimeoutMs,
        backoff: { ...(backoff.baseMs === undefined ? {} : { baseMs: backoff.baseMs }), ...(backoff.maxMs === undefined ? {} : { maxMs: backoff.maxMs }) },
        onNodeFailure: () => this.discovery?.nudge(),
      },
    );

    if (options.discover !== undefined && typeof options.discover !== 'boolean')
      throw new InvalidArgumentError('discover', 'must be a boolean');
    const intervalMs = checkTimerMs('discoverIntervalMs', options.discoverIntervalMs) ?? CLIENT_DEFAULTS.discoverIntervalMs;
    if (options.discover) {
      this.discovery = this.makeDiscovery(seeds, intervalMs);
      this.discovery.start();
    }
  }

  /**
   * Reads a key. `found: false` for a missing or deleted key (a deleted key still returns its
   * tombstone's `context`, so a later write supersedes the delete). With concurrent versions,
   * `siblings` holds each of them.
   */
  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    const path = `/v1/kv/${encodeKey(key)}`;
    const r = quorumParam('r', opts.r ?? this.defaultR);
    const policy = this.policy(opts, true);
    const answer = await this.dispatcher.call(
      { method: 'GET', path, query: { r }, headers: {}, serverTimeout: true },
      policy,
    );
    return decodeGet(answer.response, answer.node, answer.receivedAt);
  }

  /**
   * Writes a value. Pass the `context` of the read it is based on: the write then replaces
   * the versions that read saw. Without a context it becomes a sibling of any existing value.
   */
  async put(key: string, value: Uint8Array | string, opts: PutOptions = {}): Promise<PutResult> {
    const path = `/v1/kv/${encodeKey(key)}`;
    const body = toBytes(value);
    const contentType =
      checkContentType(opts.contentType) ?? (typeof value === 'string' ? TEXT_CONTENT_TYPE : BYTES_CONTENT_TYPE);
    const context = checkContext(opts.context);
    const w = quorumParam('w', opts.w ?? this.defaultW);
    const policy = this.writePolicy(opts, context);
    const headers: Record<string, string> = { 'content-type': contentType };
    if (context !== undefined) headers[CONTEXT_HEADER] = context;
    const answer = await this.dispatcher.call({ method: 'PUT', path, query: { w }, headers, body, serverTimeout: true }, policy);
    const { context: written } = decodeWrite(answer.response, answer.node, 'put');
    if (written === undefined) throw new ProtocolError(answer.node, 'PUT succeeded without an X-Ringkv-Context header');
    return { context: written };
  }

  /** Deletes a key (writes a tombstone). Pass the read's `context` to delete what was read. */
  async delete(key: string, opts: DeleteOptions = {}): Promise<DeleteResult> {
    const path = `/v1/kv/${encodeKey(key)}`;
    const context = checkContext(opts.context);
    const w = quorumParam('w', opts.w ?? this.defaultW);
    const policy = this.writePolicy(opts, context);
    const headers: Record<string, string> = {};
    if (context !== undefined) headers[CONTEXT_HEADER] = context;
    const answer = await this.dispatcher.call({ method: 'DELETE', path, query: { w }, headers, serverTimeout: true }, policy);
    const { context: written } = decodeWrite(answer.response, answer.node, 'delete');
    return written === undefined ? {} : { context: written };
  }

  /**
   * Read-resolve-modify-write: reads `key`, merges siblings with `resolve` (default
   * lastWriterWins; a single version is used as is), calls `mutator` with the result
   * (`undefined` if the key does not exist) and writes its return value with the read's
   * context. `timeoutMs` bounds the whole update. With a merging resolver such as
   * `resolvers.jsonSetUnion`, concurrent updates leave siblings that the next update merges,
   * so none is lost.
   */
  async update(key: string, mutator: Mutator, opts: UpdateOptions = {}): Promise<UpdateResult> {
    encodeKey(key);
    if (typeof mutator !== 'function') throw new InvalidArgumentError('mutator', 'must be a function');
    const resolve = opts.resolve ?? lastWriterWins;
    if (typeof resolve !== 'function') throw new InvalidArgumentError('resolve', 'must be a function');
    const explicitType = checkContentType(opts.contentType);
    // Options only the write uses are checked now too: a bad one must fail before the read
    // (and before the mutator runs), like every other InvalidArgumentError.
    quorumParam('w', opts.w);
    if (opts.retryUnsafe !== undefined && typeof opts.retryUnsafe !== 'boolean')
      throw new InvalidArgumentError('retryUnsafe', 'must be a boolean');
    const budget = checkMs('timeoutMs', opts.timeoutMs) ?? this.timeoutMs;
    const started = this.clock.monotonic();

    const read = await this.get(key, { ...pick(opts), timeoutMs: budget, ...(opts.r === undefined ? {} : { r: opts.r }) });
    let current: Uint8Array | undefined;
    let readType: string | undefined;
    if (read.found) {
      const only = read.siblings.length === 1 ? read.siblings[0] : undefined;
      current = only ? only.value : toBytes(resolve(read.siblings), 'resolve() result');
      readType = (only ?? newest(read.siblings))?.contentType;
    }

    const next = await mutator(current);
    const value = toBytes(next, 'mutator() result');
    const left = budget - (this.clock.monotonic() - started);
    if (left <= 0) throw new TimeoutError(`update of ${JSON.stringify(key)} used its ${budget} ms before writing`, budget);
    const contentType = explicitType ?? readType ?? (typeof next === 'string' ? TEXT_CONTENT_TYPE : BYTES_CONTENT_TYPE);
    const put: PutOptions = {
      ...pick(opts),
      timeoutMs: left,
      contentType,
      // update always resolves what it reads, so a duplicate of its own write (a retry after
      // an unknown outcome) is merged away by the next update: retry by default. A client
      // built with retryUnsafe: false asked for no such retries, from update as from put.
      retryUnsafe: opts.retryUnsafe ?? this.retryUnsafe ?? true,
    };
    if (read.context !== undefined) put.context = read.context;
    if (opts.w !== undefined) put.w = opts.w;
    const { context } = await this.put(key, value, put);
    return { context, value };
  }

  /** This cluster's membership as seen by one node (`GET /v1/cluster`). */
  async cluster(opts: CallOptions = {}): Promise<ClusterView> {
    const answer = await this.dispatcher.call(
      { method: 'GET', path: '/v1/cluster', query: {}, headers: { accept: 'application/json' }, serverTimeout: false },
      this.policy(opts, true),
    );
    const doc = decodeJson(answer.response, answer.node);
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      throw new ProtocolError(answer.node, '/v1/cluster did not return a JSON object');
    const view = doc as ClusterView;
    if (!Array.isArray(view.members)) view.members = [];
    return view;
  }

  /** Re-reads the member list now (needs no `discover: true`); returns the node list in use. */
  async refreshNodes(): Promise<string[]> {
    // Without discover: true, a one-off Discovery that is never started (so sets no timer).
    // Its fallback is the configured nodes, as with discover: true: after a refresh replaced
    // them, a refresh that reaches nobody puts them back, so the client can find a way in.
    const discovery = this.discovery ?? this.makeDiscovery(this.seeds, CLIENT_DEFAULTS.discoverIntervalMs);
    return discovery.refresh();
  }

  /** The node origins calls currently go to. */
  nodes(): string[] {
    return this.nodeSet.list();
  }

  /** Each node's circuit breaker state, for health displays and tests. */
  nodeStates(): { node: string; breaker: 'closed' | 'open' | 'half-open' }[] {
    return this.nodeSet.states();
  }

  /** Stops discovery and closes every connection. Later calls fail with ClientClosedError. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      this.dispatcher.close();
      this.closing = (async () => {
        await this.discovery?.stop();
        await this.pools.close();
      })();
    }
    return this.closing;
  }

  private makeDiscovery(seeds: readonly string[], intervalMs: number): Discovery {
    return new Discovery(
      { clock: this.clock, timers: this.timers },
      {
        intervalMs,
        minGapMs: DISCOVERY_MIN_GAP_MS,
        seeds,
        fetch: () => this.cluster(),
        current: () => this.nodeSet.list(),
        reachable: (node) => this.dispatcher.probe(node),
        apply: (nodes) => {
          this.nodeSet.replace(nodes);
          this.pools.retain(new Set(nodes));
        },
      },
    );
  }

  private policy(opts: CallOptions, retryUnknown: boolean): CallPolicy {
    return {
      timeoutMs: checkMs('timeoutMs', opts.timeoutMs) ?? this.timeoutMs,
      retries: checkCount('retries', opts.retries) ?? this.retries,
      signal: checkSignal(opts.signal),
      retryUnknown,
    };
  }

  private writePolicy(opts: PutOptions | DeleteOptions, context: string | undefined): CallPolicy {
    if (opts.retryUnsafe !== undefined && typeof opts.retryUnsafe !== 'boolean')
      throw new InvalidArgumentError('retryUnsafe', 'must be a boolean');
    return this.policy(opts, opts.retryUnsafe ?? this.retryUnsafe ?? context !== undefined);
  }
}

/** The per-call options that pass through unchanged from update to its get and put. */
function pick(opts: CallOptions): CallOptions {
  const out: CallOptions = {};
  if (opts.signal !== undefined) out.signal = opts.signal;
  if (opts.retries !== undefined) out.retries = opts.retries;
  return out;
}

/** The sibling lastWriterWins would pick (for its content type). */
function newest(siblings: Sibling[]): Sibling | undefined {
  if (siblings.length === 0) return undefined;
  const winner = lastWriterWins(siblings);
  return siblings.find((s) => s.value === winner);
}

function checkBreaker(b: BreakerOptions | false | undefined): BreakerOptions | false {
  if (b === false) return false;
  if (b === undefined) return {};
  if (typeof b !== 'object' || b === null) throw new InvalidArgumentError('breaker', 'must be an object or false');
  const out: BreakerOptions = {};
  const threshold = checkCount('breaker.failureThreshold', b.failureThreshold);
  if (threshold !== undefined) {
    if (threshold < 1) throw new InvalidArgumentError('breaker.failureThreshold', 'must be >= 1');
    out.failureThreshold = threshold;
  }
  const openMs = checkMs('breaker.openMs', b.openMs);
  if (openMs !== undefined) out.openMs = openMs;
  const maxOpenMs = checkMs('breaker.maxOpenMs', b.maxOpenMs);
  if (maxOpenMs !== undefined) out.maxOpenMs = maxOpenMs;
  return out;
}
