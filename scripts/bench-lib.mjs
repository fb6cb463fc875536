/**
 * The shared load generator of `npm run bench`, plus the small process helpers the bench
 * scripts share (free ports, spawning with a log file, /proc sampling, cleanup on exit).
 *
 * Model: a closed loop. C clients each issue one request, wait for the answer, issue the next,
 * for a warm-up (not counted) and then a measured window. Every latency of the window is kept
 * (a few hundred thousand doubles at most) and sorted once at the end, so percentiles are
 * exact rather than bucketed.
 *
 * Each backend ("protocol") knows how to PUT and GET one key over an undici Pool; the loop
 * knows nothing about ringkv, etcd or the baseline.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { median, serverUsPerOp } from './ab-stats.mjs';
import { runtimeSettings as sharedRuntimeSettings } from './runtime-settings.mjs';

// ---------------------------------------------------------------------------------------------
// Latency samples

/** All latencies of one run, in microseconds; grows by doubling. */
export class Samples {
  constructor(capacity = 1 << 16) {
    this.data = new Float64Array(capacity);
    this.count = 0;
  }

  add(us) {
    if (this.count === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.count++] = us;
  }

  /** Exact percentiles (nearest rank) over everything recorded; µs. */
  summary() {
    const n = this.count;
    if (n === 0) return { count: 0, mean: 0, p50: 0, p99: 0, p999: 0, max: 0 };
    const s = this.data.subarray(0, n).slice().sort();
    let sum = 0;
    for (let i = 0; i < n; i++) sum += s[i];
    const at = (q) => s[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
    return { count: n, mean: sum / n, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: s[n - 1] };
  }
}

// ---------------------------------------------------------------------------------------------
// Protocols: how one backend stores and reads a key. Each op resolves to OK, MISS (GET of an
// absent key), SIBLINGS (ringkv 300) or a failure label (HTTP status or error code).

export const OK = 'ok';
export const MISS = 'miss';
export const SIBLINGS = 'siblings';

/** Per (backend, value size) state: key names, value bytes, and what a client remembers. */
export function makeKeyState({ prefix, keys, valueSize }) {
  const names = new Array(keys);
  for (let i = 0; i < keys; i++) names[i] = `${prefix}${String(i).padStart(6, '0')}`;
  return {
    keys,
    valueSize,
    names,
    // Random bytes: LevelDB compresses blocks with snappy, so a constant value would flatter it.
    value: randomBytes(valueSize),
    // The last X-Ringkv-Context seen per key (what a real client would keep between a read
    // and the next write); unused by the other backends.
    contexts: new Array(keys).fill(undefined),
    written: new Uint8Array(keys),
    // Lazily filled by protocols that precompute something per key.
    extra: undefined,
  };
}

const OCTET = 'application/octet-stream';

/**
 * One request through undici's dispatch API with a bare handler: the status, one header's
 * value and the body bytes, nothing else. `pool.request()` builds a Readable body, an object of
 * every header and a few promises per call; on this 2-core machine the load generator shares
 * the CPU with the servers it measures, so every microsecond it spends per request is taken
 * from the target, and more so from the faster one (it pays per op). The body is still read
 * to the last byte: a benchmark that drops bytes on the floor measures less work.
 */
class LeanCall {
  constructor(header, resolve, reject) {
    this.header = header; // lower-case name of the one header the caller wants, or undefined
    this.resolve = resolve;
    this.reject = reject;
    this.status = 0;
    this.value = undefined;
    this.chunks = [];
  }

  onConnect() {}

  onHeaders(statusCode, rawHeaders) {
    // An informational (1xx) head is followed by the real one.
    this.status = statusCode;
    if (this.header !== undefined) {
      for (let i = 0; i < rawHeaders.length; i += 2) {
        const name = rawHeaders[i];
        if (name.length === this.header.length && name.toString('latin1').toLowerCase() === this.header) {
          this.value = rawHeaders[i + 1].toString('latin1');
          break;
        }
      }
    }
    return true;
  }

  onData(chunk) {
    this.chunks.push(chunk);
    return true;
  }

  onComplete() {
    const { chunks } = this;
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    this.resolve({ status: this.status, header: this.value, body });
  }

  onError(err) {
    this.reject(err);
  }
}

/** Send one request; resolves to { status, header (the value of `header`, if asked), body }. */
function send(pool, opts, header) {
  return new Promise((resolve, reject) => {
    pool.dispatch(opts, new LeanCall(header, resolve, reject));
  });
}

/** ringkv's API v1, and the bare baseline server that speaks the same paths. */
function kvPathProtocol(name, { contexts }) {
  const paths = (st) => {
    if (!st.extra) st.extra = st.names.map((k) => `/v1/kv/${encodeURIComponent(k)}`);
    return st.extra;
  };
  const contextHeader = contexts ? 'x-ringkv-context' : undefined;
  return {
    name,
    async put(pool, st, i) {
      const headers = { 'content-type': OCTET };
      // A blind PUT on an existing key makes a sibling (by design); a real client writes with
      // the context of what it last saw, and so does the benchmark.
      if (contexts && st.contexts[i] !== undefined) headers['x-ringkv-context'] = st.contexts[i];
      const res = await send(pool, { method: 'PUT', path: paths(st)[i], headers, body: st.value }, contextHeader);
      if (res.status === 204 || res.status === 200) {
        if (res.header !== undefined) st.contexts[i] = res.header;
        st.written[i] = 1;
        return OK;
      }
      return res.status;
    },
    async get(pool, st, i) {
      const res = await send(pool, { method: 'GET', path: paths(st)[i] }, contextHeader);
      if (res.header !== undefined) st.contexts[i] = res.header;
      if (res.status === 200) return res.body.length === st.valueSize ? OK : 'bad-length';
      if (res.status === 300) return SIBLINGS;
      if (res.status === 404) return MISS;
      return res.status;
    },
  };
}

const VALUE_FIELD = Buffer.from('"value":"');

/** etcd v3 through its JSON gRPC gateway: keys and values travel base64-encoded. */
function etcdProtocol() {
  const bodies = (st) => {
    if (!st.extra) {
      const v = st.value.toString('base64');
      const keys = st.names.map((k) => Buffer.from(k).toString('base64'));
      st.extra = {
        put: keys.map((k) => `{"key":"${k}","value":"${v}"}`),
        range: keys.map((k) => `{"key":"${k}"}`),
      };
    }
    return st.extra;
  };
  const headers = { 'content-type': 'application/json' };
  return {
    name: 'etcd',
    async put(pool, st, i) {
      const res = await send(pool, { method: 'POST', path: '/v3/kv/put', headers, body: bodies(st).put[i] });
      if (res.status === 200) {
        st.written[i] = 1;
        return OK;
      }
      return res.status;
    },
    async get(pool, st, i) {
      const res = await send(pool, { method: 'POST', path: '/v3/kv/range', headers, body: bodies(st).range[i] });
      if (res.status !== 200) return res.status;
      // A miss is a 200 without "kvs"; checking the base64 length avoids a full JSON.parse,
      // which would cost the load generator more CPU than the server spends on the request.
      const want = Math.ceil(st.valueSize / 3) * 4;
      const { body } = res;
      const at = body.indexOf(VALUE_FIELD);
      if (at < 0) return MISS;
      const from = at + VALUE_FIELD.length;
      const end = body.indexOf(0x22, from);
      return end - from === want ? OK : 'bad-length';
    },
  };
}

export const protocols = {
  ringkv: kvPathProtocol('ringkv', { contexts: true }),
  baseline: kvPathProtocol('baseline', { contexts: false }),
  replicated: kvPathProtocol('replicated', { contexts: false }),
  etcd: etcdProtocol(),
};

// ---------------------------------------------------------------------------------------------
// Connections

/**
 * One keep-alive Pool per target node; the C clients are spread over them round-robin, and each
 * pool gets enough connections for its clients so no request waits for a socket.
 */
export function makePools(urls, concurrency) {
  const per = Math.ceil(concurrency / urls.length);
  return urls.map(
    (u) =>
      new Pool(u, {
        connections: per,
        pipelining: 1,
        keepAliveTimeout: 60_000,
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      }),
  );
}

export async function closePools(pools) {
  await Promise.allSettled(pools.map((p) => p.close()));
}

// ---------------------------------------------------------------------------------------------
// The closed loop

function errLabel(err) {
  return err?.code ?? err?.name ?? 'error';
}

/** Pick a uniformly random key that has no request in flight (see runLoad). */
function pickKey(busy, keys) {
  let i = Math.floor(Math.random() * keys);
  while (busy[i] === 1) i = i + 1 === keys ? 0 : i + 1;
  return i;
}

/**
 * Write every key that has not been written yet (untimed), so GET never measures misses.
 * @returns failure counts by label
 */
export async function populate({ protocol, pools, state, concurrency }) {
  const failures = {};
  let next = 0;
  const worker = async (c) => {
    const pool = pools[c % pools.length];
    for (;;) {
      const i = next++;
      if (i >= state.keys || stopping()) return;
      if (state.written[i]) continue;
      let r;
      try {
        r = await protocol.put(pool, state, i);
      } catch (err) {
        r = errLabel(err);
      }
      if (r !== OK) failures[r] = (failures[r] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, c) => worker(c)));
  return failures;
}

/** Reads utime+stime (clock ticks) of a process from /proc; undefined if it is gone. */
function procCpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces; fields after it are space-separated.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}

/**
 * The machine's CPU time from the `cpu` line of /proc/stat (clock ticks summed over every CPU):
 * `total` over all states, `steal`, time the hypervisor ran something else while a vCPU
 * wanted to run, and `busy`, all time doing work (user, nice, system, irq and softirq: a
 * process's utime and stime include the interrupts taken while it ran, which /proc/stat counts
 * apart; without them the processes' own figures add up to more than the machine's).
 * Undefined where /proc/stat is missing or unreadable (not Linux).
 */
export function parseProcStat(text) {
  const line = text.split('\n', 1)[0] ?? '';
  const f = line.trim().split(/\s+/);
  if (f[0] !== 'cpu' || f.length < 9) return undefined;
  // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already
  // counted in user and nice, so the total stops at steal.
  const ticks = f.slice(1, 9).map(Number);
  if (!ticks.every((t) => Number.isSafeInteger(t) && t >= 0)) return undefined;
  return { total: ticks.reduce((a, b) => a + b, 0), steal: ticks[7], busy: ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] };
}

function machineTicks() {
  try {
    return parseProcStat(readFileSync('/proc/stat', 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Steal between two parseProcStat readings, as a fraction of all CPU time in between; undefined
 * if either is missing or no time passed. On a VM this is the share the host took away: a run
 * with steal is a run on a slower machine, whatever the code did.
 */
export function stealFraction(before, after) {
  if (before === undefined || after === undefined) return undefined;
  const total = after.total - before.total;
  return total > 0 ? (after.steal - before.steal) / total : undefined;
}

// USER_HZ is 100 on every Linux we care about; `getconf CLK_TCK` would be the way to ask.
const CLK_TCK = 100;

/**
 * CPU the rest of the machine used between two parseProcStat readings `seconds` apart, in
 * cores: user and system time of every process, less `ownCores` (the load generator's and the
 * servers' own, measured per process). A build, a test run or any other busy process during
 * a measured window shows here, and takes its CPU from the target being measured. A little
 * is always there (the tick-based figures round, and the machine has its own daemons).
 * Undefined if either reading is missing.
 */
export function foreignCores(before, after, seconds, ownCores) {
  if (before === undefined || after === undefined || !(seconds > 0)) return undefined;
  return (after.busy - before.busy) / CLK_TCK / seconds - ownCores;
}

/** Foreign CPU (see foreignCores) above which a window was shared with other work. */
export const FOREIGN_LIMIT = 0.1;

/**
 * Steal (the share of the machine's CPU time the host gave to other guests during a window)
 * at which a window no longer says what its target costs: a run where either side lost this
 * much never counts toward the goal. Either way round: steal on the other target's side
 * flatters ringkv's ratio as much as steal on ringkv's side hurts it.
 */
export const STEAL_LIMIT = 0.05;

/**
 * Wait until the server processes are quiet: less than `idlePercent` of one core together
 * over one second, or `maxMs` passed. Work a run leaves behind (LevelDB compactions, Raft
 * snapshots, GC) would otherwise be billed to the next run. Resolves to the ms waited.
 */
export async function quiesce(pids, { idlePercent = 10, maxMs = 30_000 } = {}) {
  const started = performance.now();
  const total = () => pids.reduce((sum, pid) => sum + (procCpuTicks(pid) ?? 0), 0);
  for (;;) {
    const before = total();
    await new Promise((r) => setTimeout(r, 1000));
    const busy = ((total() - before) / CLK_TCK) * 100;
    const waited = performance.now() - started;
    if (busy < idlePercent || waited >= maxMs) return Math.round(waited);
  }
}

/**
 * Run one workload against one backend.
 *
 * Keys are picked uniformly at random among those with no request in flight: two clients
 * writing the same key at once would be a real concurrent write, which ringkv answers with
 * siblings by design, and that is not what this benchmark measures.
 *
 * @param {object} o
 * @param {'put'|'get'|'mix'} o.workload
 * @param {number[]} [o.serverPids] processes whose CPU time is reported for the window
 */
export async function runLoad({ protocol, pools, state, workload, concurrency, durationMs, warmupMs, serverPids = [] }) {
  const busy = new Uint8Array(state.keys);
  const total = new Samples();
  const byOp = { put: new Samples(), get: new Samples() };
  const failures = {};
  const counts = { ok: 0, miss: 0, siblings: 0, failed: 0 };
  const t0 = performance.now();
  const measureStart = t0 + warmupMs;
  const end = measureStart + durationMs;

  let cpuStart;
  let serverStart;
  let machineStart;
  const snapshot = setTimeout(() => {
    cpuStart = process.cpuUsage();
    serverStart = serverPids.map(procCpuTicks);
    machineStart = machineTicks();
  }, warmupMs);

  const client = async (c) => {
    const pool = pools[c % pools.length];
    for (;;) {
      const start = performance.now();
      if (start >= end || stopping()) return;
      const isPut = workload === 'put' || (workload === 'mix' && Math.random() < 0.5);
      const i = pickKey(busy, state.keys);
      busy[i] = 1;
      let r;
      try {
        r = isPut ? await protocol.put(pool, state, i) : await protocol.get(pool, state, i);
      } catch (err) {
        r = errLabel(err);
      }
      busy[i] = 0;
      const done = performance.now();
      if (done >= measureStart && done <= end) {
        if (r === OK || r === MISS || r === SIBLINGS) {
          const us = (done - start) * 1000;
          total.add(us);
          (isPut ? byOp.put : byOp.get).add(us);
          counts[r]++;
        } else {
          counts.failed++;
          const label = `${isPut ? 'put' : 'get'}:${r}`;
          failures[label] = (failures[label] ?? 0) + 1;
        }
      }
      // A refused connection fails in microseconds; do not spin on a dead server.
      if (typeof r === 'string' && r !== OK && r !== MISS && r !== SIBLINGS) await sleep(5);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
  clearTimeout(snapshot);

  const seconds = durationMs / 1000;
  const cpu = cpuStart ? process.cpuUsage(cpuStart) : undefined;
  const machineEnd = machineTicks();
  const steal = stealFraction(machineStart, machineEnd);
  const serverCpu = serverStart
    ? serverPids.map((pid, k) => {
        const a = serverStart[k];
        const b = procCpuTicks(pid);
        return a === undefined || b === undefined ? undefined : (b - a) / CLK_TCK / seconds;
      })
    : [];
  const answered = counts.ok + counts.miss + counts.siblings;
  const clientCpu = cpu ? (cpu.user + cpu.system) / 1e6 / seconds : undefined;
  const serverCpuTotal = serverCpu.reduce((a, b) => (b === undefined ? a : a + b), 0);
  return {
    workload,
    valueSize: state.valueSize,
    keys: state.keys,
    concurrency,
    durationS: seconds,
    opsPerSec: answered / seconds,
    latencyUs: total.summary(),
    put: byOp.put.count ? byOp.put.summary() : undefined,
    get: byOp.get.count ? byOp.get.summary() : undefined,
    counts,
    failures,
    // Fractions of one core over the measured window.
    clientCpu,
    serverCpu: serverCpuTotal,
    // What every other process on the machine used meanwhile (see foreignCores).
    otherCpu: foreignCores(machineStart, machineEnd, seconds, (clientCpu ?? 0) + serverCpuTotal),
    // The machine is shared: a 1-minute load average far above the core count flags a noisy run.
    loadAvg1: loadavg()[0],
    // Fraction of the machine's CPU time the hypervisor took during the window (see stealFraction).
    steal,
  };
}

// ---------------------------------------------------------------------------------------------
// Output

const ms = (us) => (us / 1000).toFixed(us < 10_000 ? 2 : 1);
const pct = (f) => (f === undefined ? '-' : `${Math.round(f * 100)}%`);
/** Steal is a few percent at most on a usable run: one decimal. */
const stealPct = (f) => (f === undefined ? '-' : `${(f * 100).toFixed(1)}%`);

/** Align columns: the first `textCols` to the left, the numbers to the right. */
function pad(rows, textCols) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows
    .map((r) => r.map((v, c) => (c < textCols ? String(v).padEnd(widths[c]) : String(v).padStart(widths[c]))).join('  '))
    .join('\n');
}

/** Server CPU time per answered request, in µs (all server processes together), rounded. */
function cpuPerOp(r) {
  const us = serverUsPerOp(r);
  return us === undefined ? '-' : Math.round(us);
}

function failureText(r) {
  const parts = Object.entries(r.failures).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(',') : '0';
}

/** One line per run, as printed while the benchmark goes. */
export function formatRun(target, r) {
  const l = r.latencyUs;
  return (
    `${target.padEnd(8)} ${r.workload.padEnd(3)} ${String(r.valueSize).padStart(5)} B  ` +
    `${Math.round(r.opsPerSec).toString().padStart(7)} ops/s  ` +
    `p50 ${ms(l.p50)}  p99 ${ms(l.p99)}  p999 ${ms(l.p999)}  max ${ms(l.max)} ms  ` +
    `errors ${failureText(r)}  300s ${r.counts.siblings}  404s ${r.counts.miss}  ` +
    `cpu client ${pct(r.clientCpu)} servers ${pct(r.serverCpu)} (${cpuPerOp(r)} µs/op) other ${pct(r.otherCpu)}  load ${r.loadAvg1.toFixed(1)}  steal ${stealPct(r.steal)}`
  );
}

/** The final table (latencies in ms). */
export function formatTable(results) {
  const rows = [
    ['target', 'workload', 'value', 'ops/s', 'p50', 'p99', 'p999', 'max', 'errors', '300s', '404s', 'cpu(cl)', 'cpu(srv)', 'srv µs/op', 'other', 'steal'],
  ];
  for (const { target, result: r } of results) {
    const l = r.latencyUs;
    rows.push([
      target,
      r.workload,
      `${r.valueSize} B`,
      Math.round(r.opsPerSec),
      ms(l.p50),
      ms(l.p99),
      ms(l.p999),
      ms(l.max),
      failureText(r),
      r.counts.siblings,
      r.counts.miss,
      pct(r.clientCpu),
      pct(r.serverCpu),
      cpuPerOp(r),
      pct(r.otherCpu),
      stealPct(r.steal),
    ]);
  }
  return pad(rows, 3);
}

/** `target`'s result for `workload` at `valueSize` among one run's results, if it ran. */
function resultFor(results, target, workload, valueSize) {
  return results.find((x) => x.target === target && x.result.workload === workload && x.result.valueSize === valueSize)?.result;
}

/** ringkv/other ratios per (workload, size) for targets measured in the same invocation. */
export function formatRatios(results, base, other) {
  const rows = [
    ['workload', 'value', 'ops/s ratio', 'p50 ratio', 'p99 ratio', 'p999 ratio', 'srv µs/op ratio', `steal ${base}/${other}`, `other ${base}/${other}`],
  ];
  for (const { target, result: r } of results) {
    if (target !== base) continue;
    const o = resultFor(results, other, r.workload, r.valueSize);
    if (!o) continue;
    const q = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? (a / b).toFixed(2) : '-');
    rows.push([
      r.workload,
      `${r.valueSize} B`,
      q(r.opsPerSec, o.opsPerSec),
      q(r.latencyUs.p50, o.latencyUs.p50),
      q(r.latencyUs.p99, o.latencyUs.p99),
      q(r.latencyUs.p999, o.latencyUs.p999),
      q(cpuPerOp(r), cpuPerOp(o)),
      // A ratio whose halves ran with different steal compares two different machines.
      `${stealPct(r.steal)}/${stealPct(o.steal)}`,
      // So does one whose halves shared the machine with different other work.
      `${pct(r.otherCpu)}/${pct(o.otherCpu)}`,
    ]);
  }
  return rows.length > 1 ? pad(rows, 2) : undefined;
}

/**
 * One cell of one run (see summarizeRepeats) at `goal`x or more, p99 no worse, no errors, and
 * measured with the machine to itself on both sides (`shared`: see foreignCores; `stolen`: see
 * STEAL_LIMIT).
 */
function meetsGoal(x, goal) {
  return x.ratio >= goal && x.p99 <= 1 && x.errors === 0 && !x.shared && !x.stolen;
}

/** True when other work used FOREIGN_LIMIT of a core or more during either side's window. */
const sharedWindow = (other) => other.some((f) => f !== undefined && f >= FOREIGN_LIMIT);

/**
 * ringkv against `other` over repeated full runs (`--repeat`): per (workload, size), each run's
 * ops/s ratio, the median of the ratios and of the p99 ratios, and how many runs reached
 * `goal` with p99 no worse and no errors on either side. `runs` is one results array per run
 * (as `results` in bench.mjs). A run that lacks either target's figure for a cell is left out
 * of that cell. Returns undefined when no cell has both.
 */
export function summarizeRepeats(runs, base, other, goal = 2) {
  const cells = new Map();
  runs.forEach((results, run) => {
    for (const { target, result: r } of results) {
      if (target !== base) continue;
      const o = resultFor(results, other, r.workload, r.valueSize);
      if (!o || !(o.opsPerSec > 0) || !(o.latencyUs.p99 > 0)) continue;
      const key = `${r.workload} ${r.valueSize}`;
      if (!cells.has(key)) cells.set(key, { workload: r.workload, valueSize: r.valueSize, runs: [] });
      const ratio = r.opsPerSec / o.opsPerSec;
      const p99 = r.latencyUs.p99 / o.latencyUs.p99;
      const errors = r.counts.failed + o.counts.failed;
      const foreign = [r.otherCpu, o.otherCpu];
      const steal = [r.steal, o.steal];
      const stolen = steal.some((f) => f !== undefined && f >= STEAL_LIMIT);
      const cell = { run: run + 1, ratio, p99, errors, steal, other: foreign, shared: sharedWindow(foreign), stolen };
      cells.get(key).runs.push({ ...cell, met: meetsGoal(cell, goal) });
    }
  });
  if (cells.size === 0) return undefined;
  return [...cells.values()].map((c) => ({
    ...c,
    medianRatio: median(c.runs.map((x) => x.ratio)),
    medianP99: median(c.runs.map((x) => x.p99)),
    met: c.runs.filter((x) => x.met).length,
  }));
}

/**
 * summarizeRepeats as a table: a column per run (ratio, steal when either side had 2 % or more,
 * and other work's CPU when either window was shared).
 */
export function formatRepeats(summary, goal = 2) {
  const n = Math.max(...summary.map((c) => c.runs.at(-1)?.run ?? 0));
  const rows = [['workload', 'value', ...Array.from({ length: n }, (_, i) => `run ${i + 1}`), 'median', 'p99 median', `runs at ${goal}x`]];
  for (const c of summary) {
    const perRun = Array.from({ length: n }, (_, i) => {
      const x = c.runs.find((y) => y.run === i + 1);
      if (!x) return '-';
      const stolen = x.steal.some((f) => f !== undefined && f >= 0.02);
      const notes = [];
      if (stolen) notes.push(`steal ${x.steal.map(stealPct).join('/')}`);
      if (x.shared) notes.push(`other ${x.other.map(pct).join('/')}`);
      return `${x.ratio.toFixed(2)}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
    });
    rows.push([c.workload, `${c.valueSize} B`, ...perRun, c.medianRatio.toFixed(2), c.medianP99.toFixed(2), `${c.met} of ${c.runs.length}`]);
  }
  return pad(rows, 2);
}

/**
 * The issue's target is joint: PUT and GET each at `goal` times the other target's ops/s in the
 * same run, each with p99 no worse and no errors. Per value size (from summarizeRepeats' cells):
 * the runs that had both a PUT and a GET cell, and which of them met it on every count.
 */
export function jointTarget(summary, goal = 2) {
  const out = [];
  for (const size of [...new Set(summary.map((c) => c.valueSize))]) {
    const put = summary.find((c) => c.workload === 'put' && c.valueSize === size);
    const get = summary.find((c) => c.workload === 'get' && c.valueSize === size);
    if (!put || !get) continue;
    const runs = [];
    for (const p of put.runs) {
      const g = get.runs.find((x) => x.run === p.run);
      if (g)
        runs.push({
          run: p.run,
          met: meetsGoal(p, goal) && meetsGoal(g, goal),
          shared: p.shared || g.shared,
          stolen: p.stolen || g.stolen,
          put: p.ratio,
          get: g.ratio,
        });
    }
    if (runs.length > 0)
      out.push({
        valueSize: size,
        goal,
        runs,
        met: runs.filter((r) => r.met).map((r) => r.run),
        shared: runs.filter((r) => r.shared).map((r) => r.run),
        stolen: runs.filter((r) => r.stolen).map((r) => r.run),
      });
  }
  return out;
}

/** jointTarget as one line per value size, e.g. `256 B: 1 of 2 runs (run 2)`. */
export function formatJointTarget(joint) {
  return joint
    .map((j) => {
      const which = j.met.length > 0 ? ` (run${j.met.length > 1 ? 's' : ''} ${j.met.join(', ')})` : '';
      const runsOf = (list) => `run${list.length > 1 ? 's' : ''} ${list.join(', ')}`;
      const shared =
        j.shared.length > 0 ? `; not counted: ${runsOf(j.shared)}, where other work used ${Math.round(FOREIGN_LIMIT * 100)}% of a core or more` : '';
      const stolen =
        j.stolen.length > 0
          ? `; not counted: ${runsOf(j.stolen)}, where the host stole ${Math.round(STEAL_LIMIT * 100)}% of the CPU or more from either side`
          : '';
      return `  ${j.valueSize} B: ${j.met.length} of ${j.runs.length} run${j.runs.length > 1 ? 's' : ''}${which}${shared}${stolen}`;
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// Flags

/**
 * Minimal `--name value` / `--name=value` / `--flag` parser. `spec` maps a flag name to
 * 'string' | 'number' | 'boolean'; unknown flags are an error (exit code 2 by the caller).
 */
export function parseFlags(argv, spec) {
  const out = {};
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    let [name, value] = arg.slice(2).split(/=(.*)/s, 2);
    const type = spec[name];
    if (!type) throw new Error(`unknown flag --${name}`);
    if (type === 'boolean') {
      out[name] = value === undefined ? true : value !== 'false';
      continue;
    }
    if (value === undefined) {
      value = argv[++k];
      if (value === undefined) throw new Error(`--${name} needs a value`);
    }
    if (type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: not a number: ${value}`);
      out[name] = n;
    } else {
      out[name] = value;
    }
  }
  return out;
}

/**
 * The opening of a bench script's main(): its options from the command line, or undefined after
 * printing `usage` for `--help`. A bad flag prints the error and the usage and exits 2.
 */
export function optionsOrExit(name, parse, usage) {
  let opts;
  try {
    opts = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${name}: ${err.message}\n${usage}`);
    process.exit(2);
  }
  if (!opts.help) return opts;
  process.stdout.write(usage);
  return undefined;
}

/**
 * A fresh temp dir for a run's data and logs, with the cleanup handlers installed: removed at
 * exit, or with `keep` left in place and its path printed.
 */
export function runDir(prefix, { keep = false } = {}) {
  installCleanup();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => {
    if (keep) process.stdout.write(`kept ${dir} (data and logs)\n`);
    else rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/**
 * Run a script's main(): on success or failure, stop everything it started and remove its temp
 * dirs (cleanup), then exit 0, or 1 with the error on stderr.
 */
export function runMain(name, main) {
  main().then(
    () => cleanup().then(() => process.exit(0)),
    async (err) => {
      process.stderr.write(`\n${name} failed: ${err?.message ?? err}\n`);
      await cleanup();
      process.exit(1);
    },
  );
}

/** `a, b,,c` -> ['a', 'b', 'c']. */
export function splitList(s) {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

/** The load flags bench.mjs and bench-ab.mjs share (for parseFlags; checked by loadOptions). */
export const LOAD_FLAGS = {
  duration: 'number',
  warmup: 'number',
  prewarm: 'number',
  concurrency: 'number',
  keys: 'number',
  sizes: 'string',
  workloads: 'string',
};

/**
 * The load flags bench.mjs and bench-ab.mjs share, from parseFlags' output, checked:
 * sizes, workloads, concurrency, keys and the three durations (in ms).
 */
export function loadOptions(f, defaults) {
  const sizes = splitList(f.sizes ?? defaults.sizes).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--sizes: not a byte count: ${s}`);
    return n;
  });
  const workloads = splitList(f.workloads ?? defaults.workloads);
  for (const w of workloads) if (!['put', 'get', 'mix'].includes(w)) throw new Error(`--workloads: unknown ${w}`);
  const concurrency = f.concurrency ?? 64;
  const keys = f.keys ?? 10_000;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('--concurrency must be a positive integer');
  if (!Number.isInteger(keys) || keys <= concurrency) throw new Error('--keys must be an integer above --concurrency');
  return {
    durationMs: (f.duration ?? 10) * 1000,
    warmupMs: (f.warmup ?? 2) * 1000,
    prewarmMs: (f.prewarm ?? defaults.prewarmS) * 1000,
    concurrency,
    keys,
    sizes,
    workloads,
  };
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** `n` distinct free ports. */
export async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/**
 * The main of a benchmark server script (bench-baseline, bench-replicated): `parse()` reads the
 * command line (a throw is a usage error, exit 2), `start(options)` resolves to
 * `{ url, close() }`; then print one JSON line `{"listening": url}` and close on SIGINT or
 * SIGTERM. A start failure exits 1 with its stack.
 */
export function serveUntilSignal(name, parse, start) {
  let options;
  try {
    options = parse();
  } catch (err) {
    process.stderr.write(`${name}: ${err.message}\n`);
    process.exit(2);
  }
  start(options).then(
    (server) => {
      process.stdout.write(`${JSON.stringify({ listening: server.url })}\n`);
      const stop = () => {
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (err) => {
      process.stderr.write(`${name}: ${err?.stack ?? err}\n`);
      process.exit(1);
    },
  );
}

/** Every child this process started; killed on any exit path (see installCleanup). */
const children = new Set();
const cleanupTasks = [];

/** Spawn a child whose stdout+stderr go to `logFile` (never to a pipe that could fill up). */
export function spawnLogged(cmd, args, { logFile, env, cwd } = {}) {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.logFile = logFile;
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child is gone. */
export function stopChild(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** The last lines of a child's log, for error messages. */
export function logTail(file, lines = 20) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Register an async cleanup (LIFO). */
export function onCleanup(task) {
  cleanupTasks.push(task);
}

let cleaning;

/** True once cleanup has begun (Ctrl-C, error): load loops stop issuing requests. */
export function stopping() {
  return cleaning !== undefined;
}

/** Run the registered cleanups once (children are stopped by their own tasks). */
export function cleanup() {
  if (!cleaning) {
    cleaning = (async () => {
      while (cleanupTasks.length) {
        const task = cleanupTasks.pop();
        try {
          await task();
        } catch (err) {
          process.stderr.write(`cleanup: ${err?.message ?? err}\n`);
        }
      }
      await Promise.all([...children].map((c) => stopChild(c, 2000)));
    })();
  }
  return cleaning;
}

/**
 * Make Ctrl-C, SIGTERM and crashes clean up before exiting. The synchronous 'exit' hook is the
 * last resort: whatever is still running gets SIGKILL.
 */
export function installCleanup() {
  const bail = (code) => {
    cleanup().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => {
    process.stderr.write('\ninterrupted; stopping everything...\n');
    bail(130);
  });
  process.once('SIGTERM', () => bail(143));
  process.on('uncaughtException', (err) => {
    process.stderr.write(`${err?.stack ?? err}\n`);
    bail(1);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`${err?.stack ?? err}\n`);
    bail(1);
  });
  process.on('exit', () => {
    for (const c of children) c.kill('SIGKILL');
  });
}

/** Poll `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor(what, check, { timeoutMs = 60_000, intervalMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      // A dead process will not become ready: `fatal` errors end the wait at once.
      if (err?.fatal) throw err;
      last = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
}

/** VmHWM (peak resident set) and VmRSS of a process in KiB; undefined once it is gone. */
export function procMemory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))?.[1] ?? 0);
    return { hwm: kib('VmHWM'), rss: kib('VmRSS') };
  } catch {
    return undefined;
  }
}

/**
 * Samples the resident set of some processes every `intervalMs`, remembering the peak. The
 * kernel's VmHWM is already a peak; sampling VmRSS too keeps the figure if a process exits.
 */
export class MemoryWatcher {
  constructor(named, intervalMs = 500) {
    this.peaks = new Map(named.map(({ name }) => [name, 0]));
    this.named = named;
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample() {
    for (const { name, pid } of this.named) {
      const m = procMemory(pid);
      if (m) this.peaks.set(name, Math.max(this.peaks.get(name), m.hwm, m.rss));
    }
  }

  stop() {
    this.sample();
    clearInterval(this.timer);
    return Object.fromEntries([...this.peaks].map(([name, kib]) => [name, Math.round(kib / 1024)]));
  }
}

/**
 * Install Debian packages with apt-get (root only), refreshing the package index once if the
 * first attempt fails (a stale index is the usual cause). Throws if it cannot.
 */
export function aptInstall(packages, log) {
  if (process.getuid?.() !== 0) throw new Error(`not root: install ${packages.join(' ')} (apt-get) yourself`);
  log(`installing ${packages.join(' ')} with apt-get...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // apt's progress goes to stderr: stdout is for the figures.
  const stdio = ['ignore', 2, 2];
  const install = () => execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio, env });
  try {
    install();
  } catch {
    execFileSync('apt-get', ['update'], { stdio, env });
    install();
  }
}

/**
 * How a ringkv node runs in production (scripts/runtime-settings.mjs), installing the
 * preloaded allocator's Debian package with apt-get if it is missing.
 */
export function runtimeSettings(root, log = (m) => process.stderr.write(`${m}\n`)) {
  return sharedRuntimeSettings(root, { log, install: (packages) => aptInstall(packages, log) });
}
