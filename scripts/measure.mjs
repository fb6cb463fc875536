#!/usr/bin/env node
/**
 * Recovery and scaling figures for a local ringkv cluster (see docs/benchmarks.md,
 * "Recovery and scaling figures"):
 *
 *   handoff  3 nodes, anti-entropy out of the way. kill -9 n3, write 10 000 keys via n1/n2,
 *            count the hints parked, restart n3, time until every node has 0 hints pending,
 *            then kill n1+n2 and read every key from n3 alone with r=1.
 *   aae      3 nodes, hinted handoff off, anti-entropy every 1 s. Load K keys, measure the
 *            identical-exchange rate and the internal bytes per route (through a counting
 *            proxy each node advertises). Then twice 10 000 new keys that n3 misses: once
 *            while n3 is cut off at the proxies (a partition, no restart), once while it is
 *            killed with SIGKILL and then restarted; each time, time until the repaired-key
 *            counters reach 10 000 and stop growing. Finally verify n3 alone as above.
 *   join     3 nodes holding K keys; a 4th node joins while a closed-loop 50/50 GET/PUT load
 *            (16 clients, context-passing PUTs) runs; time to a settled ring, bytes and keys
 *            moved, and the load's latency and errors during the move against a baseline.
 *
 * Usage: npm run build && node scripts/measure.mjs [--scenario handoff|aae|join|all] [--keys K]
 *        [--json FILE] [--keep]
 *
 * Everything it starts (nodes, proxies, temp dirs) is stopped and removed on success, on
 * error and on Ctrl-C. Only 127.0.0.1 is used.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent, createServer as createHttpServer, request as httpRequest } from 'node:http';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import {
  cleanup,
  closePools,
  freePorts,
  installCleanup,
  logTail,
  MISS,
  makeKeyState,
  makePools,
  OK,
  onCleanup,
  parseFlags,
  populate,
  procMemory,
  protocols,
  SIBLINGS,
  Samples,
  spawnLogged,
  stopChild,
  stopping,
  waitFor,
} from './bench-lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const HOST = '127.0.0.1';
const CLI = join(root, 'dist', 'cli.js');
const VALUE_SIZE = 256;

const USAGE = `usage: node scripts/measure.mjs [flags]     (run \`npm run build\` first)
  --scenario S   handoff | aae | join | all (default all)
  --keys K       keys loaded before the aae and join scenarios (default 100000)
  --json FILE    write every figure as JSON
  --keep         keep the temp dir (data and node logs) and print its path
`;

const say = (m) => process.stdout.write(`${m}\n`);
const now = () => performance.now();
const secs = (ms) => (ms / 1000).toFixed(2);

// ---------------------------------------------------------------------------------------------
// Machine load: sampled every 2 s while a scenario runs.

class LoadWatcher {
  constructor() {
    this.samples = [];
    this.sample();
    this.timer = setInterval(() => this.sample(), 2000);
    this.timer.unref();
  }
  sample() {
    this.samples.push(os.loadavg()[0]);
  }
  stop() {
    this.sample();
    clearInterval(this.timer);
    const s = this.samples;
    return {
      min: Math.min(...s),
      max: Math.max(...s),
      mean: s.reduce((a, b) => a + b, 0) / s.length,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers (plain fetch for control traffic; undici Pools for the data).

async function getJson(url, timeoutMs = 2000) {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

async function getText(url, timeoutMs = 3000) {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.text();
}

/** Sum of a Prometheus sample over every label set matching `labels` (substring match). */
function metricSum(text, name, labels = '') {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (labels && !rest.includes(labels)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

/** A distinct 256-byte value per key, so a read can be checked byte for byte. */
function valueFor(name) {
  const h = createHash('sha256').update(name).digest();
  return Buffer.concat(Array.from({ length: VALUE_SIZE / h.length }, () => h));
}

const keyNames = (prefix, count) => Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(6, '0')}`);

/** PUT every key once (no context: they are new), `concurrency` at a time, round-robin over pools. */
async function writeKeys(pools, names, concurrency) {
  const failures = {};
  let next = 0;
  let ok = 0;
  const worker = async (c) => {
    const pool = pools[c % pools.length];
    for (;;) {
      const i = next++;
      if (i >= names.length || stopping()) return;
      const name = names[i];
      let label;
      try {
        const res = await pool.request({
          method: 'PUT',
          path: `/v1/kv/${encodeURIComponent(name)}`,
          headers: { 'content-type': 'application/octet-stream' },
          body: valueFor(name),
        });
        const text = await res.body.text();
        label = res.statusCode === 204 ? OK : `${res.statusCode} ${text.slice(0, 120)}`;
      } catch (err) {
        label = err?.code ?? err?.message ?? 'error';
      }
      if (label === OK) ok++;
      else failures[label] = (failures[label] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, c) => worker(c)));
  return { ok, failures };
}

/** GET every key with ?r=1 from one node; checks status 200 and the exact bytes. */
async function verifyKeys(url, names, concurrency = 32) {
  const pool = new Pool(url, { connections: concurrency, headersTimeout: 15_000, bodyTimeout: 15_000 });
  const out = { ok: 0, missing: 0, wrong: 0, siblings: 0, other: {}, examples: [] };
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= names.length || stopping()) return;
      const name = names[i];
      let label;
      try {
        const res = await pool.request({ method: 'GET', path: `/v1/kv/${encodeURIComponent(name)}?r=1` });
        const body = Buffer.from(await res.body.arrayBuffer());
        if (res.statusCode === 200) label = body.equals(valueFor(name)) ? 'ok' : 'wrong';
        else if (res.statusCode === 404) label = 'missing';
        else if (res.statusCode === 300) label = 'siblings';
        else label = `${res.statusCode} ${body.toString('utf8').slice(0, 120)}`;
      } catch (err) {
        label = err?.code ?? err?.message ?? 'error';
      }
      if (label in out && label !== 'other' && label !== 'examples') out[label]++;
      else out.other[label] = (out.other[label] ?? 0) + 1;
      if (label !== 'ok' && out.examples.length < 10) out.examples.push(`${name}: ${label}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  await pool.close();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Per-route byte counting proxy (aae scenario): each node advertises the proxy's address, so
// every node-to-node call to it passes through here and is counted by `/internal/<route>`.
// Bytes are HTTP/1.1 bytes on the wire as re-serialised here: request line + headers + body,
// status line + headers + body (close to, not exactly, what the peers' sockets carry).

function headerBytes(rawHeaders) {
  let n = 2; // final CRLF
  for (let i = 0; i < rawHeaders.length; i += 2) n += rawHeaders[i].length + 2 + rawHeaders[i + 1].length + 2;
  return n;
}

const ZERO_ROUTE = { requests: 0, bytesToTarget: 0, bytesFromTarget: 0, bodyToTarget: 0, bodyFromTarget: 0 };

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade']);

class CountingProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.routes = new Map();
    this.agent = new HttpAgent({ keepAlive: true, maxSockets: 16 });
    this.server = undefined;
    this.port = undefined;
    /** `x-ringkv-from` values (advertised addresses) whose calls are dropped. */
    this.blocked = new Set();
  }

  count(route, out, inn, bodyOut, bodyIn) {
    const r = this.routes.get(route) ?? { ...ZERO_ROUTE };
    r.requests++;
    r.bytesToTarget += out;
    r.bytesFromTarget += inn;
    r.bodyToTarget += bodyOut;
    r.bodyFromTarget += bodyIn;
    this.routes.set(route, r);
  }

  snapshot() {
    return new Map([...this.routes].map(([k, v]) => [k, { ...v }]));
  }

  async listen(port) {
    this.server = createHttpServer({ keepAliveTimeout: 5000 }, (req, res) => this.handle(req, res));
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, HOST, resolve);
    });
    this.port = this.server.address().port;
  }

  /** Stop accepting and drop every connection, so callers get ECONNREFUSED as from a dead node. */
  async close() {
    if (!this.server) return;
    const s = this.server;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise((resolve) => s.close(() => resolve()));
    this.agent.destroy();
    this.agent = new HttpAgent({ keepAlive: true, maxSockets: 16 });
  }

  handle(req, res) {
    // Simulated partition: calls from a blocked sender die as a reset connection.
    if (this.blocked.has(req.headers['x-ringkv-from'])) {
      req.socket.destroy();
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const route = req.url.startsWith('/internal/') ? req.url.slice('/internal/'.length).split('?')[0] : req.url;
      const headers = {};
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const k = req.rawHeaders[i];
        if (!HOP.has(k.toLowerCase())) headers[k] = req.rawHeaders[i + 1];
      }
      headers['content-length'] = String(body.length);
      const out = `${req.method} ${req.url} HTTP/1.1\r\n`.length + headerBytes(req.rawHeaders) + body.length;
      const up = httpRequest(
        { host: HOST, port: this.targetPort, method: req.method, path: req.url, headers, agent: this.agent },
        (ures) => {
          const rchunks = [];
          ures.on('data', (c) => rchunks.push(c));
          ures.on('error', () => res.destroy());
          ures.on('end', () => {
            const rbody = Buffer.concat(rchunks);
            const rh = {};
            for (let i = 0; i < ures.rawHeaders.length; i += 2) {
              const k = ures.rawHeaders[i];
              if (!HOP.has(k.toLowerCase())) rh[k] = ures.rawHeaders[i + 1];
            }
            rh['content-length'] = String(rbody.length);
            const inn = `HTTP/1.1 ${ures.statusCode} X\r\n`.length + headerBytes(ures.rawHeaders) + rbody.length;
            this.count(route, out, inn, body.length, rbody.length);
            res.writeHead(ures.statusCode, rh);
            res.end(rbody);
          });
        },
      );
      up.on('error', () => res.destroy());
      up.end(body);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// A local cluster whose nodes can be killed and restarted with the same flags and data.

class Cluster {
  constructor(dir, { extra = [], proxied = false } = {}) {
    this.dir = dir;
    this.extra = extra;
    this.proxied = proxied;
    this.secret = randomBytes(18).toString('base64url');
    this.nodes = [];
  }

  async init(count) {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\``);
    const ports = await freePorts(count * (this.proxied ? 2 : 1));
    for (let i = 0; i < count; i++) {
      const port = ports[i];
      const n = { id: `n${i + 1}`, port, zone: 'abc'[i % 3], url: `http://${HOST}:${port}`, child: undefined };
      if (this.proxied) {
        n.proxy = new CountingProxy(port);
        await n.proxy.listen(ports[count + i]);
        n.advertise = `${HOST}:${n.proxy.port}`;
      }
      this.nodes.push(n);
    }
    this.seeds = this.nodes.map((n) => n.advertise ?? `${HOST}:${n.port}`).join(',');
    onCleanup(() => this.stopAll());
  }

  node(id) {
    return this.nodes.find((n) => n.id === id);
  }

  args(n) {
    const a = [CLI, 'node', '--id', n.id, '--listen', `${HOST}:${n.port}`, '--data', join(this.dir, n.id)];
    a.push('--zone', n.zone, '--seeds', this.seeds, '--secret', this.secret, ...this.extra);
    if (n.advertise) a.push('--advertise', n.advertise);
    return a;
  }

  async start(n) {
    if (n.proxy && !n.proxy.server) await n.proxy.listen(n.proxy.port);
    n.child = spawnLogged(process.execPath, this.args(n), { cwd: root, logFile: join(this.dir, `${n.id}.log`) });
    n.spawnedAt = now();
    return n.child;
  }

  /** Adds a node (not started) with the same flags; the seeds stay those of the first nodes. */
  async add(id, zone) {
    const [port] = await freePorts(1);
    const n = { id, port, zone, url: `http://${HOST}:${port}`, child: undefined };
    this.nodes.push(n);
    return n;
  }

  alive(n) {
    return n.child && n.child.exitCode === null && n.child.signalCode === null;
  }

  checkAlive(list) {
    for (const n of list) {
      if (n.child && !this.alive(n)) {
        const why = n.child.signalCode ?? `code ${n.child.exitCode}`;
        throw Object.assign(new Error(`${n.id} exited (${why}):\n${logTail(n.child.logFile)}`), { fatal: true });
      }
    }
  }

  async kill9(n) {
    const c = n.child;
    if (!this.alive(n)) return;
    const gone = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGKILL');
    await gone;
    if (n.proxy) await n.proxy.close();
  }

  async stopAll() {
    await Promise.all(this.nodes.map((n) => (n.child ? stopChild(n.child, 3000) : undefined)));
    await Promise.all(this.nodes.map((n) => n.proxy?.close()));
  }

  views(list = this.nodes.filter((n) => this.alive(n))) {
    return Promise.all(list.map((n) => getJson(`${n.url}/v1/cluster`)));
  }

  metrics(list = this.nodes.filter((n) => this.alive(n))) {
    return Promise.all(list.map((n) => getText(`${n.url}/metrics`)));
  }

  async waitReady(count, timeoutMs = 90_000) {
    const list = this.nodes.slice(0, count);
    await waitFor(
      `every node to show ${count} members up with one ring checksum`,
      async () => {
        this.checkAlive(list);
        const views = await this.views(list);
        const sums = new Set(views.map((v) => v.ring?.checksum));
        return (
          sums.size === 1 &&
          views.every((v) => v.members?.length === count && v.members.every((m) => m.status === 'up'))
        );
      },
      { timeoutMs },
    );
  }

  /** Until every node in `observers` reports each of `targets` as `down`. */
  async waitSeenDown(observers, targets, timeoutMs = 60_000) {
    const t0 = now();
    await waitFor(
      `${observers.map((n) => n.id)} to see ${targets.map((n) => n.id)} down`,
      async () => {
        this.checkAlive(observers);
        const views = await this.views(observers);
        return views.every((v) =>
          targets.every((t) => v.members.find((m) => m.id === t.id)?.status === 'down'),
        );
      },
      { timeoutMs, intervalMs: 100 },
    );
    return now() - t0;
  }

  async hintsPending(list = this.nodes.filter((n) => this.alive(n))) {
    const views = await this.views(list);
    return views.map((v) => v.hints?.pending ?? 0);
  }
}

async function waitHealth(n, timeoutMs = 60_000) {
  await waitFor(
    `${n.id} /v1/health`,
    async () => {
      if (n.child.exitCode !== null || n.child.signalCode !== null) {
        throw Object.assign(new Error(`${n.id} exited:\n${logTail(n.child.logFile)}`), { fatal: true });
      }
      const r = await fetch(`${n.url}/v1/health`, { signal: AbortSignal.timeout(1000) });
      return r.ok;
    },
    { timeoutMs, intervalMs: 50 },
  );
  return now();
}

// ---------------------------------------------------------------------------------------------
// Scenario 1: hinted handoff

async function scenarioHandoff(dir) {
  const HANDOFF_KEYS = 10_000;
  const c = new Cluster(dir, { extra: ['--anti-entropy-interval-ms', '86400000'] });
  await c.init(3);
  for (const n of c.nodes) await c.start(n);
  await c.waitReady(3);
  const [n1, n2, n3] = c.nodes;
  say('handoff: cluster up; kill -9 n3');

  await c.kill9(n3);
  const detectMs = await c.waitSeenDown([n1, n2], [n3]);
  say(`handoff: n1 and n2 see n3 down after ${secs(detectMs)} s`);

  const pools = makePools([n1.url, n2.url], 64);
  const names = keyNames('handoff-', HANDOFF_KEYS);
  const tw = now();
  const w = await writeKeys(pools, names, 64);
  const writeMs = now() - tw;
  await closePools(pools);
  say(`handoff: wrote ${w.ok}/${HANDOFF_KEYS} keys in ${secs(writeMs)} s; failures ${JSON.stringify(w.failures)}`);
  await sleep(500);
  const parked = await c.hintsPending([n1, n2]);
  const hintsParked = parked[0] + parked[1];
  say(`handoff: hints.pending n1=${parked[0]} n2=${parked[1]} sum=${hintsParked} (want >= ${HANDOFF_KEYS})`);

  await c.start(n3);
  const tSpawn = n3.spawnedAt;
  const tHealth = await waitHealth(n3);
  // Poll every 100 ms; the time is that of the first poll that saw 0 hints on every node.
  let maxSeen = 0;
  await waitFor(
    'hints.pending to reach 0 on every node',
    async () => {
      c.checkAlive(c.nodes);
      const h = await c.hintsPending(c.nodes);
      maxSeen = Math.max(maxSeen, ...h);
      return h.every((x) => x === 0);
    },
    { timeoutMs: 300_000, intervalMs: 100 },
  );
  const tZero = now();
  const m = await c.metrics([n1, n2]);
  const delivered = m.reduce((a, t) => a + metricSum(t, 'ringkv_hints_delivered_total'), 0);
  // What else brought n3 level: a restarted node may also pull partitions (transfers).
  await waitFor(
    'n3 up everywhere with no transfers pending',
    async () => {
      const views = await c.views(c.nodes);
      return views.every((v) => (v.transfers?.pending ?? 0) === 0 && v.members.every((x) => x.status === 'up'));
    },
    { timeoutMs: 300_000, intervalMs: 100 },
  );
  const tSettled = now();
  const m3 = (await c.metrics([n3]))[0];
  const n3Transfer = {
    keys: metricSum(m3, 'ringkv_transfer_keys_received_total'),
    bytes: metricSum(m3, 'ringkv_transfer_bytes_received_total'),
    settledAfterSpawnS: (tSettled - tSpawn) / 1000,
  };
  say(`handoff: n3 transfers on restart: ${JSON.stringify(n3Transfer)}`);
  say(
    `handoff: hints 0 everywhere ${secs(tZero - tSpawn)} s after n3's spawn, ` +
      `${secs(tZero - tHealth)} s after its /v1/health answered (health itself ${secs(tHealth - tSpawn)} s); ` +
      `hints delivered (n1+n2 counter) ${delivered}`,
  );

  // n3 alone: kill the two others, wait until n3 sees them down, read every key with r=1.
  await c.kill9(n1);
  await c.kill9(n2);
  await c.waitSeenDown([n3], [n1, n2]);
  const tv = now();
  const v = await verifyKeys(n3.url, names);
  say(`handoff: n3 alone: ${v.ok}/${HANDOFF_KEYS} keys OK in ${secs(now() - tv)} s; ${JSON.stringify(v)}`);
  await c.stopAll();
  return {
    keys: HANDOFF_KEYS,
    downDetectS: detectMs / 1000,
    writeS: writeMs / 1000,
    writeFailures: w.failures,
    hintsParked: { n1: parked[0], n2: parked[1], sum: hintsParked },
    hintsDelivered: delivered,
    n3Transfer,
    healthAfterSpawnS: (tHealth - tSpawn) / 1000,
    zeroAfterSpawnS: (tZero - tSpawn) / 1000,
    zeroAfterHealthS: (tZero - tHealth) / 1000,
    verify: v,
  };
}

// ---------------------------------------------------------------------------------------------
// Scenario 2: anti-entropy

async function aaeCounters(c, list) {
  const texts = await c.metrics(list);
  return list.map((n, i) => ({
    id: n.id,
    identical: metricSum(texts[i], 'ringkv_antientropy_exchanges_total', 'outcome="identical"'),
    exchanges: metricSum(texts[i], 'ringkv_antientropy_exchanges_total'),
    repaired: metricSum(texts[i], 'ringkv_antientropy_keys_repaired_total'),
  }));
}

function routeDelta(after, before) {
  const out = {};
  for (const [route, a] of after) {
    const b = before.get(route) ?? ZERO_ROUTE;
    const d = {};
    for (const k of Object.keys(ZERO_ROUTE)) d[k] = a[k] - b[k];
    if (d.requests > 0) out[route] = d;
  }
  return out;
}

function sumRoutes(list) {
  const out = {};
  for (const r of list) {
    for (const [route, d] of Object.entries(r)) {
      const o = out[route] ?? { ...ZERO_ROUTE };
      for (const k of Object.keys(ZERO_ROUTE)) o[k] += d[k];
      out[route] = o;
    }
  }
  return out;
}

async function scenarioAae(dir, keys) {
  const NEW_KEYS = 10_000;
  const IDLE_S = 20;
  const c = new Cluster(dir, {
    extra: ['--hinted-handoff', 'false', '--anti-entropy-interval-ms', '1000'],
    proxied: true,
  });
  await c.init(3);
  for (const n of c.nodes) await c.start(n);
  await c.waitReady(3);
  const [n1, n2, n3] = c.nodes;

  say(`aae: loading ${keys} keys (256 B, 64 clients over n1..n3)`);
  const pools = makePools(c.nodes.map((n) => n.url), 64);
  const tl = now();
  const load = await writeKeys(pools, keyNames('aae-base-', keys), 64);
  const loadMs = now() - tl;
  await closePools(pools);
  say(`aae: loaded ${load.ok} keys in ${secs(loadMs)} s; failures ${JSON.stringify(load.failures)}`);

  // Let the replicas settle (W=2 writes finishing on the third replica; in-flight repairs),
  // then measure an idle window: only gossip and anti-entropy traffic.
  await waitFor(
    'an anti-entropy round with no repairs (idle replicas)',
    async () => {
      const a = await aaeCounters(c, c.nodes);
      await sleep(3000);
      const b = await aaeCounters(c, c.nodes);
      const rep = b.reduce((s, x) => s + x.repaired, 0) - a.reduce((s, x) => s + x.repaired, 0);
      const exch = b.reduce((s, x) => s + x.exchanges, 0) - a.reduce((s, x) => s + x.exchanges, 0);
      const ident = b.reduce((s, x) => s + x.identical, 0) - a.reduce((s, x) => s + x.identical, 0);
      return rep === 0 && exch > 0 && exch === ident;
    },
    { timeoutMs: 180_000, intervalMs: 0 },
  );
  const repairedDuringLoad = (await aaeCounters(c, c.nodes)).reduce((s, x) => s + x.repaired, 0);
  const before = await aaeCounters(c, c.nodes);
  const pBefore = c.nodes.map((n) => n.proxy.snapshot());
  const ti = now();
  await sleep(IDLE_S * 1000);
  const idleS = (now() - ti) / 1000;
  const after = await aaeCounters(c, c.nodes);
  const routes = sumRoutes(c.nodes.map((n, i) => routeDelta(n.proxy.snapshot(), pBefore[i])));
  const identical = after.reduce((s, x) => s + x.identical, 0) - before.reduce((s, x) => s + x.identical, 0);
  const exchanges = after.reduce((s, x) => s + x.exchanges, 0) - before.reduce((s, x) => s + x.exchanges, 0);
  const root = routes['aae-root'];
  const perExchange = root
    ? {
        requests: root.requests,
        bytesRequest: root.bytesToTarget / root.requests,
        bytesReply: root.bytesFromTarget / root.requests,
        bodyRequest: root.bodyToTarget / root.requests,
        bodyReply: root.bodyFromTarget / root.requests,
      }
    : undefined;
  say(
    `aae: idle ${idleS.toFixed(1)} s: ${identical} identical of ${exchanges} exchanges ` +
      `(${(identical / idleS).toFixed(2)}/s cluster-wide, ${(identical / idleS / 3).toFixed(2)}/s per node)`,
  );
  say(`aae: internal traffic by route in the idle window (via counting proxies): ${JSON.stringify(routes)}`);
  if (perExchange) {
    say(
      `aae: per aae-root call: ${perExchange.bytesRequest.toFixed(0)} B request + ` +
        `${perExchange.bytesReply.toFixed(0)} B reply (HTTP/1.1 headers included); bodies ` +
        `${perExchange.bodyRequest.toFixed(1)} B + ${perExchange.bodyReply.toFixed(1)} B`,
    );
  }

  // Part 1, a partition (no restart): n3 is cut off from n1 and n2 at the proxies, NEW_KEYS
  // new keys are written via n1/n2 (no hints: handoff is off), the partition heals, and
  // anti-entropy alone must bring n3 level.
  await n3.proxy.close();
  n1.proxy.blocked.add(n3.advertise);
  n2.proxy.blocked.add(n3.advertise);
  const isoMs = await c.waitSeenDown([n1, n2], [n3]);
  await c.waitSeenDown([n3], [n1, n2]);
  say(`aae/partition: n3 isolated; n1, n2 see it down after ${secs(isoMs)} s; writing ${NEW_KEYS} new keys via n1/n2`);
  const part = await divergeAndRepair(c, 'aae-part-', NEW_KEYS, async () => {
    await n3.proxy.listen(n3.proxy.port);
    n1.proxy.blocked.clear();
    n2.proxy.blocked.clear();
    return now();
  });

  // Part 2, kill -9 and restart (as the handoff scenario): NEW_KEYS more new keys.
  await c.kill9(n3);
  const detectMs = await c.waitSeenDown([n1, n2], [n3]);
  say(`aae/restart: n3 killed; n1 and n2 see it down after ${secs(detectMs)} s; writing ${NEW_KEYS} new keys via n1/n2`);
  const restart = await divergeAndRepair(c, 'aae-restart-', NEW_KEYS, async () => {
    await c.start(n3);
    const tSpawn = n3.spawnedAt;
    const tHealth = await waitHealth(n3);
    return { tSpawn, tHealth };
  });

  await c.kill9(n1);
  await c.kill9(n2);
  await c.waitSeenDown([n3], [n1, n2]);
  const names = [...keyNames('aae-part-', NEW_KEYS), ...keyNames('aae-restart-', NEW_KEYS)];
  const v = await verifyKeys(n3.url, names);
  say(`aae: n3 alone: ${v.ok}/${names.length} new keys (both parts) OK; ${JSON.stringify(v)}`);
  await c.stopAll();
  return {
    keysLoaded: keys,
    loadS: loadMs / 1000,
    loadFailures: load.failures,
    repairedDuringLoad,
    idle: { seconds: idleS, identical, exchanges, identicalPerS: identical / idleS, routes, perExchange },
    newKeys: NEW_KEYS,
    partition: { downDetectS: isoMs / 1000, ...part },
    restart: { downDetectS: detectMs / 1000, ...restart },
    verify: v,
  };
}

/**
 * Write `count` new keys via n1/n2 while n3 is unreachable, then `heal()` (resolves to the
 * time the heal finished, or { tSpawn, tHealth } for a restart) and wait until the repaired
 * counters reach `count` and stay still for 5 s (or, if they cannot, until n3 is up with no
 * transfers pending and the counters have stayed still for 10 s).
 */
async function divergeAndRepair(c, prefix, count, heal) {
  const [n1, n2, n3] = c.nodes;
  const pools = makePools([n1.url, n2.url], 64);
  const w = await writeKeys(pools, keyNames(prefix, count), 64);
  await closePools(pools);
  const hints = await c.hintsPending([n1, n2]);
  say(`   wrote ${w.ok}/${count}; failures ${JSON.stringify(w.failures)}; hints.pending ${hints} (handoff off: want 0)`);
  const m3before = c.alive(n3) ? (await c.metrics([n3]))[0] : '';
  const before = await aaeCounters(c, c.nodes.filter((n) => c.alive(n)));
  const beforeById = Object.fromEntries(before.map((x) => [x.id, x.repaired]));
  const t3before = metricSum(m3before, 'ringkv_transfer_keys_received_total');
  const b3before = metricSum(m3before, 'ringkv_transfer_bytes_received_total');

  const healed = await heal();
  const t0 = typeof healed === 'number' ? healed : healed.tSpawn;
  const tHealth = typeof healed === 'number' ? healed : healed.tHealth;
  // A restarted n3 is a new process whose counters start at 0 (it was not in `before`).
  const repairedSince = (cs) => cs.reduce((s, x) => s + x.repaired - (beforeById[x.id] ?? 0), 0);
  let last = -1;
  let lastChange = now();
  let lastGrowthAt;
  let firstReached;
  let settledAt;
  const trace = [];
  await waitFor(
    `anti-entropy to repair ${count} keys and stop`,
    async () => {
      c.checkAlive(c.nodes);
      const cs = await aaeCounters(c, c.nodes);
      const total = repairedSince(cs);
      const t = now();
      if (total !== last) {
        trace.push([Number(((t - t0) / 1000).toFixed(2)), total]);
        if (last >= 0) lastGrowthAt = t;
        last = total;
        lastChange = t;
      }
      if (total >= count && firstReached === undefined) firstReached = t;
      const views = await c.views(c.nodes);
      const settled = views.every(
        (v) => (v.transfers?.pending ?? 0) === 0 && v.members.every((m) => m.status === 'up'),
      );
      if (settled && settledAt === undefined) settledAt = t;
      if (!settled) settledAt = undefined;
      if (total >= count) return t - lastChange >= 5000;
      return settled && t - lastChange >= 10_000 && t - settledAt >= 10_000;
    },
    { timeoutMs: 600_000, intervalMs: 200 },
  );
  const final = await aaeCounters(c, c.nodes);
  const repaired = repairedSince(final);
  const m3 = (await c.metrics([n3]))[0];
  const transferKeys = metricSum(m3, 'ringkv_transfer_keys_received_total') - t3before;
  const transferBytes = metricSum(m3, 'ringkv_transfer_bytes_received_total') - b3before;
  const rel = (t) => (t === undefined ? undefined : Number(((t - t0) / 1000).toFixed(2)));
  const out = {
    writeFailures: w.failures,
    healthAfterStartS: rel(tHealth),
    repaired,
    reachedCountS: rel(firstReached),
    lastGrowthS: rel(lastGrowthAt),
    lastGrowthAfterHealthS: lastGrowthAt === undefined ? undefined : Number(((lastGrowthAt - tHealth) / 1000).toFixed(2)),
    n3TransferKeys: transferKeys,
    n3TransferBytes: transferBytes,
    perNode: final,
    trace,
  };
  say(`   ${JSON.stringify(out)}`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scenario 3: a node joins under load

/** Pick a uniformly random key with no request in flight (as bench-lib's runLoad does). */
function pickKey(busy, keys) {
  let i = Math.floor(Math.random() * keys);
  while (busy[i] === 1) i = i + 1 === keys ? 0 : i + 1;
  return i;
}

/**
 * bench-lib's closed 50/50 loop (same protocol, same key state, same key picking), but open
 * ended and tagging every request with the phase in which it started, so the baseline and the
 * move are one continuous load. Returns { stop(), phases }.
 */
function startMixLoad({ pools, state, concurrency, phaseOf }) {
  const protocol = protocols.ringkv;
  const busy = new Uint8Array(state.keys);
  const phases = {};
  const phase = (p) => {
    if (!phases[p]) {
      phases[p] = {
        all: new Samples(),
        put: new Samples(),
        get: new Samples(),
        counts: { ok: 0, miss: 0, siblings: 0, failed: 0 },
        failures: {},
        errors: [],
        first: undefined,
        last: undefined,
      };
    }
    return phases[p];
  };
  let running = true;
  /** Keys successfully written per phase (to check afterwards that every replica has them). */
  const written = {};
  const client = async (c) => {
    const pool = pools[c % pools.length];
    while (running && !stopping()) {
      const start = now();
      const ph = phaseOf(start);
      const isPut = Math.random() < 0.5;
      const i = pickKey(busy, state.keys);
      busy[i] = 1;
      let r;
      try {
        r = isPut ? await protocol.put(pool, state, i) : await protocol.get(pool, state, i);
      } catch (err) {
        r = err?.code ?? err?.name ?? 'error';
      }
      busy[i] = 0;
      const done = now();
      if (ph === undefined) continue; // warm-up
      const p = phase(ph);
      p.first ??= start;
      p.last = done;
      const us = (done - start) * 1000;
      if (isPut && r === OK) {
        if (!written[ph]) written[ph] = new Set();
        written[ph].add(i);
      }
      if (r === OK || r === MISS || r === SIBLINGS) {
        p.all.add(us);
        (isPut ? p.put : p.get).add(us);
        p.counts[r === OK ? 'ok' : r === MISS ? 'miss' : 'siblings']++;
      } else {
        p.counts.failed++;
      }
      if (r !== OK) {
        const label = `${isPut ? 'put' : 'get'}:${r}`;
        p.failures[label] = (p.failures[label] ?? 0) + 1;
        if (p.errors.length < 200) p.errors.push({ atMs: Math.round(start), key: state.names[i], label });
      }
      // A failure can be instant (refused connection): do not spin on it.
      if (r !== OK && r !== MISS && r !== SIBLINGS) await sleep(5);
    }
  };
  const all = Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
  return {
    phases,
    written,
    async stop() {
      running = false;
      await all;
    },
  };
}

function summarizePhase(p) {
  if (!p) return undefined;
  const seconds = (p.last - p.first) / 1000;
  const ms = (x) => Number((x / 1000).toFixed(2));
  const s = p.all.summary();
  return {
    seconds: Number(seconds.toFixed(1)),
    requests: s.count + p.counts.failed,
    opsPerSec: Number((s.count / seconds).toFixed(0)),
    p50ms: ms(s.p50),
    p99ms: ms(s.p99),
    p999ms: ms(s.p999),
    maxMs: ms(s.max),
    putP99ms: ms(p.put.summary().p99),
    getP99ms: ms(p.get.summary().p99),
    counts: p.counts,
    failures: p.failures,
    errors: p.errors,
  };
}

async function scenarioJoin(dir, keys) {
  const CLIENTS = 16;
  const WARMUP_MS = 3000;
  const BASELINE_MS = 30_000;
  const AFTER_MS = 10_000;
  const c = new Cluster(dir);
  await c.init(3);
  for (const n of c.nodes.slice(0, 3)) await c.start(n);
  await c.waitReady(3);
  const [n1, n2, n3] = c.nodes;

  say(`join: loading ${keys} keys (256 B, 64 clients over n1..n3)`);
  const state = makeKeyState({ prefix: 'join-', keys, valueSize: VALUE_SIZE });
  let pools = makePools([n1.url, n2.url, n3.url], 64);
  const tl = now();
  const popFailures = await populate({ protocol: protocols.ringkv, pools, state, concurrency: 64 });
  const loadMs = now() - tl;
  await closePools(pools);
  say(`join: loaded in ${secs(loadMs)} s; failures ${JSON.stringify(popFailures)}`);
  await waitFor(
    'hints to drain after the load',
    async () => (await c.hintsPending()).every((h) => h === 0),
    { timeoutMs: 120_000, intervalMs: 250 },
  );

  pools = makePools([n1.url, n2.url, n3.url], CLIENTS);
  const t0 = now();
  let tJoin = Number.POSITIVE_INFINITY;
  let tDone = Number.POSITIVE_INFINITY;
  const phaseOf = (t) => {
    if (t < t0 + WARMUP_MS) return undefined;
    if (t < tJoin) return 'baseline';
    if (t < tDone) return 'move';
    return 'after';
  };
  const load = startMixLoad({ pools, state, concurrency: CLIENTS, phaseOf });
  onCleanup(() => load.stop());
  await sleep(WARMUP_MS + BASELINE_MS);

  const n4 = await c.add('n4', 'a');
  await c.start(n4);
  tJoin = n4.spawnedAt;
  say(`join: baseline done; n4 spawned (zone a, seeds ${c.seeds})`);
  const marks = {};
  const mark = (name, cond, t) => {
    if (cond && marks[name] === undefined) marks[name] = (t - tJoin) / 1000;
  };
  let lastViews;
  await waitFor(
    'n4 in every ring, up everywhere, and no transfers pending',
    async () => {
      c.checkAlive(c.nodes);
      const views = await c.views(c.nodes);
      lastViews = views;
      const t = now();
      mark('health', true, t);
      const inRings = views.every((v) => v.ring?.members?.includes('n4'));
      const upEverywhere = views.every((v) => v.members?.find((m) => m.id === 'n4')?.status === 'up');
      const n4Pending = views[3].transfers?.pending ?? -1;
      const allPending = views.reduce((s, v) => s + (v.transfers?.pending ?? 0), 0);
      mark('inEveryRing', inRings, t);
      mark('upEverywhere', upEverywhere, t);
      mark('n4TransfersZero', inRings && n4Pending === 0, t);
      mark('allTransfersZero', inRings && upEverywhere && allPending === 0, t);
      return inRings && upEverywhere && n4Pending === 0 && allPending === 0;
    },
    { timeoutMs: 900_000, intervalMs: 200 },
  );
  tDone = now();
  const joinS = (tDone - tJoin) / 1000;
  say(`join: settled ${joinS.toFixed(2)} s after n4's spawn; milestones (s after spawn) ${JSON.stringify(marks)}`);
  await sleep(AFTER_MS);
  await load.stop();
  await closePools(pools);

  // Were the PUTs made during the move applied on every replica, n4 included? Read each such
  // key with r=all (coordinated by n4) and count the read repairs this causes (stale replicas).
  await sleep(3000);
  const moved = [...(load.written.move ?? [])];
  const rrBefore = (await c.metrics(c.nodes)).reduce((a, t) => a + metricSum(t, 'ringkv_read_repairs_total'), 0);
  const probe = new Pool(n4.url, { connections: 16 });
  const probeOut = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (;;) {
        const k = next++;
        if (k >= moved.length || stopping()) return;
        const i = moved[k];
        let label;
        try {
          const res = await probe.request({ method: 'GET', path: `/v1/kv/${encodeURIComponent(state.names[i])}?r=all` });
          const body = await res.body.arrayBuffer();
          label = res.statusCode === 200 && body.byteLength === VALUE_SIZE ? 'ok' : String(res.statusCode);
        } catch (err) {
          label = err?.code ?? 'error';
        }
        probeOut[label] = (probeOut[label] ?? 0) + 1;
      }
    }),
  );
  await probe.close();
  await sleep(1000);
  const rrTexts = await c.metrics(c.nodes);
  const rrAfter = rrTexts.reduce((a, t) => a + metricSum(t, 'ringkv_read_repairs_total'), 0);
  const moveProbe = { keys: moved.length, answers: probeOut, readRepairs: rrAfter - rrBefore };
  say(`join: keys PUT during the move, read back with r=all via n4: ${JSON.stringify(moveProbe)}`);
  const m4 = (await c.metrics([n4]))[0];
  const keysIn = metricSum(m4, 'ringkv_transfer_keys_received_total');
  const bytesIn = metricSum(m4, 'ringkv_transfer_bytes_received_total');
  const others = await c.metrics([n1, n2, n3]);
  const othersIn = others.map((t) => metricSum(t, 'ringkv_transfer_keys_received_total'));
  const ownership = lastViews[3].members.map((m) => ({ id: m.id, status: m.status, ownership: m.ownership }));
  const fraction = keysIn / (keys * 3);
  const phases = {
    baseline: summarizePhase(load.phases.baseline),
    move: summarizePhase(load.phases.move),
    after: summarizePhase(load.phases.after),
  };
  const mem = procMemory(n4.child.pid);
  say(
    `join: n4 received ${keysIn} keys, ${bytesIn} bytes (${(bytesIn / 2 ** 20).toFixed(1)} MiB); ` +
      `fraction ${fraction.toFixed(4)} of ${keys * 3} replica copies (ideal 0.25); n1..n3 received ${othersIn}`,
  );
  say(`join: ownership as n4 sees it: ${JSON.stringify(ownership)}`);
  for (const [name, p] of Object.entries(phases)) {
    if (!p) continue;
    const { errors, ...rest } = p;
    say(`join: load ${name}: ${JSON.stringify(rest)}`);
    if (errors.length) say(`join: ${name} errors (first ${errors.length}, atMs relative to n4 spawn):`);
    for (const e of errors) say(`   ${((e.atMs - tJoin) / 1000).toFixed(2)} s ${e.key} ${e.label}`);
  }
  await c.stopAll();
  return {
    keysLoaded: keys,
    loadS: loadMs / 1000,
    loadFailures: popFailures,
    joinS,
    milestonesS: marks,
    n4KeysReceived: keysIn,
    n4BytesReceived: bytesIn,
    othersKeysReceived: othersIn,
    movedFraction: fraction,
    ownership,
    n4RssMiB: mem ? Math.round(mem.hwm / 1024) : undefined,
    moveProbe,
    phases,
  };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  let f;
  try {
    f = parseFlags(process.argv.slice(2), { scenario: 'string', keys: 'number', json: 'string', keep: 'boolean', help: 'boolean' });
    if (f.scenario !== undefined && !['handoff', 'aae', 'join', 'all'].includes(f.scenario)) {
      throw new Error(`--scenario: unknown ${f.scenario}`);
    }
    if (f.keys !== undefined && (!Number.isInteger(f.keys) || f.keys < 100)) throw new Error('--keys: an integer >= 100');
  } catch (err) {
    process.stderr.write(`measure: ${err.message}\n${USAGE}`);
    process.exit(2);
  }
  if (f.help) {
    process.stdout.write(USAGE);
    return;
  }
  const scenario = f.scenario ?? 'all';
  const keys = f.keys ?? 100_000;
  installCleanup();
  const baseDir = mkdtempSync(join(os.tmpdir(), 'ringkv-measure-'));
  onCleanup(() => {
    if (f.keep) say(`kept ${baseDir}`);
    else rmSync(baseDir, { recursive: true, force: true });
  });
  say(
    `ringkv measure: ${os.cpus().length} x ${os.cpus()[0]?.model}, node ${process.version}; ` +
      `scenario ${scenario}, keys ${keys}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
  );
  const runs = { handoff: scenarioHandoff, aae: (d) => scenarioAae(d, keys), join: (d) => scenarioJoin(d, keys) };
  const results = {};
  for (const name of scenario === 'all' ? ['handoff', 'aae', 'join'] : [scenario]) {
    if (stopping()) return;
    const dir = join(baseDir, name);
    mkdirSync(dir, { recursive: true });
    say(`\n== ${name}`);
    const lw = new LoadWatcher();
    const t = now();
    results[name] = await runs[name](dir);
    const la = lw.stop();
    results[name].wallS = (now() - t) / 1000;
    results[name].loadAvg = la;
    say(`== ${name} done in ${secs(now() - t)} s; load average 1 min: min ${la.min.toFixed(1)} mean ${la.mean.toFixed(1)} max ${la.max.toFixed(1)}`);
  }
  if (f.json) {
    writeFileSync(f.json, `${JSON.stringify({ when: new Date().toISOString(), keys, results }, null, 2)}\n`);
    say(`wrote ${f.json}`);
  }
}

main().then(
  () => cleanup().then(() => process.exit(0)),
  async (err) => {
    process.stderr.write(`\nmeasure failed: ${err?.stack ?? err}\n`);
    await cleanup();
    process.exit(1);
  },
);
