/**
 * The workloads of the fault suite, run by client-runner.mjs inside the client namespace
 * through the real SDK (dist/client), recording every operation in a history (history.mjs):
 *
 *   set   (a) writers add distinct integers to one key by read-union-write (`update` with
 *             `resolvers.jsonSetUnion`), readers read it; one write attempt per add
 *             (`retries: 0`), so each add is at most one version on the server.
 *   keys  (b) writers put one key per element (`k:<n>` = "<n>").
 *   del       keys created before the faults; the orchestrator deletes some of them during
 *             partitions, through the nodes of the majority side.
 *
 * `final()` then reads every key through every node at r=1, round after round, until all nodes
 * agree and a read at r=all confirms it (or the deadline passes).
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { toRanges } from './history.mjs';

const text = new TextDecoder();

/** A small seeded PRNG (mulberry32) in the SDK's Random shape. */
export function seeded(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    bytes: (len) => Uint8Array.from({ length: len }, () => Math.floor(next() * 256)),
  };
}

/** Short hash of the bytes of a value: identifies a sibling with the write that made it. */
export function valueHash(bytes) {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/** Codes of attempt failures that prove the request never reached a node. */
const NOT_SENT = new Set(['CONNECTION_FAILED', 'CIRCUIT_OPEN']);
/** Codes that prove the server rejected the request without applying it. */
const REJECTED = new Set(['INVALID_ARGUMENT', 'BAD_KEY', 'BAD_QUERY', 'BAD_CONTEXT', 'VALUE_TOO_LARGE', 'BAD_REQUEST', 'CLOSED']);

/**
 * Outcome of a write that threw: 'fail' only when it certainly had no effect (never sent, or
 * rejected as malformed), otherwise 'unknown' (timeouts, 503 quorum failures, connections
 * lost after sending, other 5xx).
 */
export function writeOutcome(err) {
  const code = err?.code;
  if (REJECTED.has(code) || (typeof err?.status === 'number' && err.status >= 400 && err.status < 500)) return 'fail';
  if (NOT_SENT.has(code)) return 'fail';
  if (code === 'UNAVAILABLE' || code === 'TIMEOUT') {
    const causes = err.causes ?? [];
    // No attempt at all, or only attempts that were never sent.
    if (causes.every((c) => NOT_SENT.has(c.error?.code))) return 'fail';
  }
  return 'unknown';
}

function errorFields(err) {
  const causes = (err?.causes ?? []).map((c) => `${c.node.replace(/^http:\/\//, '')}:${c.error?.code}`);
  return {
    error: err?.code ?? err?.name ?? 'ERROR',
    message: String(err?.message ?? err).slice(0, 300),
    ...(causes.length > 0 ? { causes } : {}),
    ...(err?.node ? { node: err.node.replace(/^http:\/\//, '') } : {}),
  };
}

/** A set value's bytes -> { ranges, hash, dups }. */
function setSibling(bytes) {
  const arr = JSON.parse(text.decode(bytes));
  if (!Array.isArray(arr)) throw new Error('set value is not a JSON array');
  const ints = arr.filter((v) => Number.isInteger(v));
  return { ranges: toRanges(ints), hash: valueHash(bytes), dups: arr.length - new Set(arr).size, other: arr.length - ints.length };
}

/** A GetResult -> the fields a read records for workload `w`. */
function readFields(w, got) {
  if (!got.found) return { found: false, tombstone: got.context !== undefined };
  if (w === 'set') return { found: true, siblings: got.siblings.map((s) => setSibling(s.value)) };
  return { found: true, values: got.siblings.map((s) => text.decode(s.value)) };
}

/** A comparable view of recorded read fields (same rule as the checker's). */
function viewOf(w, f) {
  if (!f.found) return '∅';
  return (w === 'set' ? f.siblings.map((s) => s.hash) : f.values).slice().sort().join(',');
}

/** Run `fn` over `items` with at most `limit` in flight. */
async function pool(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const k = next++;
      await fn(items[k], k);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export const WORKLOAD_DEFAULTS = {
  set: { key: 'set', writers: 4, readers: 1, paceMs: 60, readPaceMs: 200, resolver: 'jsonSetUnion' },
  keys: { writers: 2, paceMs: 40 },
  del: { keys: 12 },
  client: { timeoutMs: 5000, attemptTimeoutMs: 2000, connectTimeoutMs: 500 },
};

export class Workloads {
  /**
   * @param {{ sdk: { Client: any, resolvers: any }, history: import('./history.mjs').HistoryWriter,
   *   nodes: string[], seed: number, config?: object, log?: (m: string) => void }} opts
   */
  constructor({ sdk, history, nodes, seed, config = {}, log = () => {} }) {
    this.sdk = sdk;
    this.history = history;
    this.nodes = nodes;
    this.random = seeded(seed);
    this.log = log;
    this.cfg = {
      set: { ...WORKLOAD_DEFAULTS.set, ...config.set },
      keys: { ...WORKLOAD_DEFAULTS.keys, ...config.keys },
      del: { ...WORKLOAD_DEFAULTS.del, ...config.del },
      client: { ...WORKLOAD_DEFAULTS.client, ...config.client },
    };
    if (typeof sdk.resolvers[this.cfg.set.resolver] !== 'function') throw new Error(`unknown resolver ${this.cfg.set.resolver}`);
    this.clients = [];
    this.workers = [];
    this.stopping = false;
    this.nextElement = 0;
    this.nextKey = 0;
    this.keysAttempted = [];
    /** del keys created, with the context of a read after creation. */
    this.delKeys = [];
    this.delCursor = 0;
    /** del keys whose delete was acknowledged. */
    this.deletedOk = [];
    this.nextProcess = 0;
  }

  /** A client whose node list starts at node `i` (clients spread over nodes, fail over in order). */
  client(i, extra = {}) {
    const n = this.nodes.length;
    const nodes = Array.from({ length: n }, (_, k) => this.nodes[(i + k) % n]);
    const c = new this.sdk.Client({ nodes, ...this.cfg.client, random: seeded(this.random.int(2 ** 31)), ...extra });
    this.clients.push(c);
    return c;
  }

  pinned(url, extra = {}) {
    const c = new this.sdk.Client({ nodes: [url], ...this.cfg.client, retries: 2, breaker: false, ...extra });
    this.clients.push(c);
    return c;
  }

  /** Creates the del keys (w=all, on the healthy cluster) and reads back their contexts. */
  async setup() {
    const p = this.nextProcess++;
    const c = this.client(0, { retries: 5 });
    for (let k = 0; k < this.cfg.del.keys; k++) {
      const key = `d:${k}`;
      // w=all so that every replica holds the value before the faults; a partial write is
      // retried with the context of a read, so it replaces itself instead of adding siblings.
      let context;
      for (let attempt = 0; attempt < 30; attempt++) {
        const h = this.history.invoke(p, 'put', 'del', { key, value: `d${k}` });
        try {
          await c.put(key, `d${k}`, { w: 'all', timeoutMs: 5000, ...(context === undefined ? {} : { context }) });
          this.history.complete(h, 'ok');
          context = (await c.get(key, { r: 'all', timeoutMs: 5000 })).context;
          this.delKeys.push({ key, context });
          break;
        } catch (err) {
          if (this.history.open.has(h.op)) this.history.complete(h, writeOutcome(err), errorFields(err));
          await sleep(500);
          context = (await c.get(key, { timeoutMs: 5000 }).catch(() => undefined))?.context ?? context;
        }
      }
    }
    this.log(`setup: ${this.delKeys.length}/${this.cfg.del.keys} del keys created`);
  }

  start() {
    const { set, keys } = this.cfg;
    let slot = 0;
    for (let k = 0; k < set.writers; k++) this.workers.push(this.setWriter(this.nextProcess++, this.client(slot++)));
    for (let k = 0; k < set.readers; k++) this.workers.push(this.setReader(this.nextProcess++, this.client(slot++)));
    for (let k = 0; k < keys.writers; k++) this.workers.push(this.keyWriter(this.nextProcess++, this.client(slot++)));
    this.history.note('workload-start');
  }

  async pause(ms) {
    if (ms > 0) await sleep(ms);
  }

  /** Workload (a): read-union-write of a fresh element, one write attempt. */
  async setWriter(p, c) {
    const { key, paceMs } = this.cfg.set;
    // jsonSetUnion merges siblings; lastWriterWins (the negative control) keeps one and must lose adds.
    const resolve = this.sdk.resolvers[this.cfg.set.resolver];
    while (!this.stopping) {
      const e = this.nextElement++;
      const h = this.history.invoke(p, 'add', 'set', { value: e });
      let read;
      let wrote;
      try {
        await c.update(
          key,
          (current) => {
            const have = current === undefined ? [] : JSON.parse(text.decode(current));
            read = toRanges(have);
            const next = JSON.stringify([...new Set([...have, e])].sort((a, b) => a - b));
            wrote = valueHash(new TextEncoder().encode(next));
            return next;
          },
          { resolve, contentType: 'application/json', retries: 0 },
        );
        this.history.complete(h, 'ok', { read, wrote });
      } catch (err) {
        // The mutator never ran: the update failed in its read, so nothing was written.
        const type = wrote === undefined ? 'fail' : writeOutcome(err);
        this.history.complete(h, type, { ...errorFields(err), ...(wrote === undefined ? { phase: 'read' } : { read, wrote }) });
      }
      await this.pause(this.random.int(paceMs));
    }
  }

  async setReader(p, c) {
    const { key, readPaceMs } = this.cfg.set;
    while (!this.stopping) {
      const h = this.history.invoke(p, 'read', 'set', { key });
      try {
        const got = await c.get(key);
        this.history.complete(h, 'ok', { key, ...readFields('set', got) });
      } catch (err) {
        this.history.complete(h, 'fail', errorFields(err));
      }
      await this.pause(this.random.int(readPaceMs));
    }
  }

  /** Workload (b): one fresh key per element. */
  async keyWriter(p, c) {
    const { paceMs } = this.cfg.keys;
    while (!this.stopping) {
      const n = this.nextKey++;
      const key = `k:${n}`;
      this.keysAttempted.push(key);
      const h = this.history.invoke(p, 'put', 'keys', { key, value: String(n) });
      try {
        await c.put(key, String(n));
        this.history.complete(h, 'ok');
      } catch (err) {
        this.history.complete(h, writeOutcome(err), errorFields(err));
      }
      await this.pause(this.random.int(paceMs));
    }
  }

  /** Deletes the next `count` del keys through the nodes `via` (the majority side). */
  async deletes({ count, via }) {
    const p = this.nextProcess++;
    const c = new this.sdk.Client({ nodes: via, ...this.cfg.client });
    const results = [];
    try {
      for (let k = 0; k < count && this.delCursor < this.delKeys.length - 2; k++) {
        // The last two keys are never deleted: controls that must survive.
        const { key, context } = this.delKeys[this.delCursor++];
        const h = this.history.invoke(p, 'delete', 'del', { key, via });
        try {
          await c.delete(key, context === undefined ? {} : { context });
          this.history.complete(h, 'ok');
          this.deletedOk.push(key);
          results.push({ key, type: 'ok' });
        } catch (err) {
          const type = writeOutcome(err);
          this.history.complete(h, type, errorFields(err));
          results.push({ key, type, error: err.code });
        }
      }
    } finally {
      await c.close();
    }
    return results;
  }

  /** Stops the workers and waits for every operation in flight to complete. */
  async stop() {
    this.stopping = true;
    await Promise.all(this.workers);
    this.workers = [];
    this.history.note('workload-stop');
  }

  /** Every key the final reads cover, per workload. */
  finalKeys() {
    // Keys of (b) plus ten that were never attempted: they must not exist.
    const probes = Array.from({ length: 10 }, (_, k) => `k:${this.nextKey + k}`);
    return [
      { w: 'set', key: this.cfg.set.key },
      ...[...this.keysAttempted, ...probes].map((key) => ({ w: 'keys', key })),
      ...this.delKeys.map(({ key }) => ({ w: 'del', key })),
    ];
  }

  /** One read of `key` through `c`, recorded as `f`. Returns the recorded fields or undefined. */
  async recordedRead(p, c, f, w, key, extra, opts) {
    const h = this.history.invoke(p, f, w, { key, ...extra });
    try {
      const got = await c.get(key, opts);
      const fields = { key, ...extra, ...readFields(w, got) };
      this.history.complete(h, 'ok', fields);
      return fields;
    } catch (err) {
      this.history.complete(h, 'fail', { key, ...extra, ...errorFields(err) });
      return undefined;
    }
  }

  /**
   * Final reads: every key through every node at r=1, until every node returns the same
   * versions for every key and reads at r=all agree with them, or `deadlineMs` passes (the
   * last round always ends with r=all reads). Returns { converged, rounds, disagreeing }.
   */
  async final({ deadlineMs, nodes = this.nodes, concurrency = 32 }) {
    const deadline = Date.now() + deadlineMs;
    const keys = this.finalKeys();
    const p = this.nextProcess++;
    const pinned = nodes.map((url) => ({ url, node: url.replace(/^http:\/\//, ''), c: this.pinned(url) }));
    const quorumClient = this.client(0, { retries: 4 });
    let round = 0;
    for (;;) {
      round++;
      const views = new Map(); // key -> Set(view)
      let failures = 0;
      await pool(
        pinned.flatMap((n) => keys.map((k) => ({ ...k, n }))),
        concurrency,
        async ({ w, key, n }) => {
          const f = await this.recordedRead(p, n.c, 'final-read', w, key, { node: n.node, round, r: 1 }, { r: 1 });
          if (!f) failures++;
          else {
            if (!views.has(key)) views.set(key, new Set());
            views.get(key).add(viewOf(w, f));
          }
        },
      );
      let disagreeing = [...views.values()].filter((s) => s.size > 1).length + failures;
      const last = Date.now() >= deadline;
      if (disagreeing === 0 || last) {
        // Confirm with quorum-of-all reads, which also serve as the final state.
        let mismatch = 0;
        await pool(keys, concurrency, async ({ w, key }) => {
          const f = await this.recordedRead(p, quorumClient, 'final-read', w, key, { node: 'all', round, r: 'all' }, { r: 'all' });
          const agreed = views.get(key);
          if (!f || !agreed || agreed.size !== 1 || !agreed.has(viewOf(w, f))) mismatch++;
        });
        disagreeing += mismatch;
        if (disagreeing === 0 || last) {
          this.log(`final reads: round ${round}, ${keys.length} keys x ${nodes.length} nodes, disagreeing ${disagreeing}`);
          return { converged: disagreeing === 0, rounds: round, disagreeing, keys: keys.length };
        }
      }
      this.log(`final reads: round ${round}: ${disagreeing} keys disagree; retrying`);
      await sleep(1000);
    }
  }

  /** Reads the keys whose delete was acknowledged through every node at r=1 (after reaping). */
  async reapReads({ nodes = this.nodes } = {}) {
    const p = this.nextProcess++;
    const out = { keys: this.deletedOk.length, present: 0, tombstone: 0, reaped: 0, failed: 0 };
    for (const url of nodes) {
      const c = this.pinned(url);
      for (const key of this.deletedOk) {
        const f = await this.recordedRead(p, c, 'reap-read', 'del', key, { node: url.replace(/^http:\/\//, ''), r: 1 }, { r: 1 });
        if (!f) out.failed++;
        else if (f.found) out.present++;
        else if (f.tombstone) out.tombstone++;
        else out.reaped++;
      }
    }
    return out;
  }

  async close() {
    this.stopping = true;
    await Promise.all(this.clients.map((c) => c.close()));
  }
}
