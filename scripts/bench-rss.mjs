#!/usr/bin/env node
/**
 * Memory after many keys: start a throwaway 3-node ringkv cluster (as `npm run bench` does),
 * write K distinct keys (default 1 000 000; N=3 so every node stores every key) through the
 * public API with C closed-loop clients, and report each node's resident set (VmRSS) and peak
 * (VmHWM) as it goes, then once more after the writes settle. Only prints numbers.
 *
 *   node scripts/bench-rss.mjs [--keys 1000000] [--value 256] [--concurrency 64] [--every 100000]
 *                              [--idle 10] [--restart] [--keep]
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { closePools, makePools, onCleanup, parseFlags, runDir, runMain, stopping, waitFor } from './bench-lib.mjs';
import { startRingkv } from './bench.mjs';

const USAGE = `usage: node scripts/bench-rss.mjs [flags]
  --keys K            distinct keys written (default 1000000)
  --value B           value size in bytes (default 256)
  --concurrency C     closed-loop clients (default 64)
  --every K           report memory every K keys written (default 100000)
  --idle S            after the writes settle, report every 10 s for S seconds (default 10)
  --restart           then stop the nodes, start them again on their data, wait for each to
                      rebuild its anti-entropy tree (one scan of every key) and report again
  --keep              keep the temp dir (data and process logs) and print its path`;
const FLAGS = {
  keys: 'number',
  value: 'number',
  concurrency: 'number',
  every: 'number',
  idle: 'number',
  restart: 'boolean',
  keep: 'boolean',
  help: 'boolean',
};
let f;
try {
  f = parseFlags(process.argv.slice(2), FLAGS);
} catch (err) {
  process.stderr.write(`bench-rss: ${err.message}\n${USAGE}\n`);
  process.exit(2);
}
if (f.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const keys = f.keys ?? 1_000_000;
const valueSize = f.value ?? 256;
const concurrency = f.concurrency ?? 64;
const every = f.every ?? 100_000;
const say = (m) => process.stdout.write(`${m}\n`);
const mib = (kib) => Math.round(kib / 1024);

/**
 * VmRSS split as the kernel counts it: anonymous (heap, V8, malloc) and file-backed (the node
 * binary, and LevelDB's mmapped tables: clean page cache the kernel may drop), plus VmHWM.
 */
function memory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))?.[1] ?? 0);
    return { rss: kib('VmRSS'), hwm: kib('VmHWM'), anon: kib('RssAnon'), file: kib('RssFile'), ...tableMaps(pid) };
  } catch {
    return undefined;
  }
}

/** The part of the file-backed set that is LevelDB's mmapped tables (*.ldb), and how many are mapped. */
function tableMaps(pid) {
  let tables = 0;
  let mapped = 0;
  let inTable = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      // (a table deleted by a compaction stays mapped while something still reads it)
      inTable = /\.ldb( \(deleted\))?$/.test(head[1]);
      if (inTable) mapped++;
    } else if (inTable && line.startsWith('Rss:')) {
      tables += Number(line.match(/(\d+)/)?.[1] ?? 0);
    }
  }
  return { tables, mapped };
}

/** The running cluster (replaced by --restart) and the memory report line for it. */
let cluster;
let report;

async function main() {
  const dir = runDir('ringkv-rss-', { keep: f.keep });
  cluster = await startRingkv(dir, { single: false });
  onCleanup(() => cluster.stop());
  const pools = makePools(cluster.urls, concurrency);
  onCleanup(() => closePools(pools));
  report = (label) => {
    const parts = cluster.procs.map(({ name, pid }) => {
      const m = memory(pid);
      return m ? `${name} rss ${mib(m.rss)} (anon ${mib(m.anon)} file ${mib(m.file)}, tables ${mib(m.tables)} in ${m.mapped}) peak ${mib(m.hwm)}` : `${name} gone`;
    });
    say(`${label.padEnd(24)} ${parts.join(' | ')}  (MiB)`);
  };
  say(`ringkv rss: ${keys} keys x ${valueSize} B, ${concurrency} clients; ${cluster.describe}`);
  report('started');

  // One random value per client, rewritten per request: cheap, and not compressible.
  let next = 0;
  let errors = 0;
  const started = performance.now();
  let lastReport = 0;
  const client = async (c) => {
    const pool = pools[c % pools.length];
    const value = randomBytes(valueSize);
    while (!stopping()) {
      const i = next++;
      if (i >= keys) return;
      value.writeUInt32LE(i, 0);
      try {
        const res = await pool.request({ method: 'PUT', path: `/v1/kv/rss-${i}`, body: value });
        await res.body.dump();
        if (res.statusCode !== 204) errors++;
      } catch {
        errors++;
      }
      if (i + 1 - lastReport >= every) {
        lastReport = i + 1;
        const s = (performance.now() - started) / 1000;
        report(`${i + 1} keys (${Math.round((i + 1) / s)}/s)`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
  const secs = (performance.now() - started) / 1000;
  say(`wrote ${Math.min(next, keys)} keys in ${secs.toFixed(0)} s (${Math.round(keys / secs)}/s), ${errors} errors`);
  await cluster.settle?.();
  report('settled');
  const idle = f.idle ?? 10;
  await idleReports(idle);
  if (f.restart) await restart(dir, idle);
}

/** Report every 10 s for `idle` seconds (at least once), then the nodes' own figures. */
async function idleReports(idle) {
  for (let s = 10; s <= Math.max(idle, 10); s += 10) {
    await sleep(10_000);
    report(`after ${s} s idle`);
  }
  await heapReport(cluster);
}

/**
 * A node that starts on a full store scans all of it once to build its anti-entropy tree, so
 * every table file is read (mmapped) then, as well as during the writes.
 */
async function restart(dir, idle) {
  await cluster.stop();
  // Each node's log is appended to, so count the tree-built lines it had before.
  const logs = ['n1', 'n2', 'n3'].map((n) => join(dir, `${n}.log`));
  const built = () => logs.map((l) => (existsSync(l) ? readFileSync(l, 'utf8').split('anti-entropy tree built').length - 1 : 0));
  const before = built();
  const started = performance.now();
  cluster = await startRingkv(dir, { single: false });
  report('restarted');
  await waitFor('every node to rebuild its anti-entropy tree', async () => built().every((n, i) => n > before[i]), { timeoutMs: 300_000 });
  report(`trees built (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  await idleReports(idle);
}

/**
 * Where a node's anonymous memory is, as the node itself exports it (/metrics, process
 * metrics): V8's heap (used of allocated) and memory held outside it by ArrayBuffers and
 * other external objects. What remains of `anon` is malloc outside V8: LevelDB's memtables
 * and block cache, and allocator slack.
 */
async function heapReport(cluster) {
  const want = {
    ringkv_nodejs_heap_size_used_bytes: 'heap used',
    ringkv_nodejs_heap_size_total_bytes: 'heap total',
    ringkv_nodejs_external_memory_bytes: 'external',
  };
  // Background work that reads the whole store (and so maps table pages) after the writes.
  const counts = {
    ringkv_hints_delivered_total: 'hints delivered',
    ringkv_antientropy_keys_repaired_total: 'AAE keys repaired',
    ringkv_idle_collections_total: 'idle collections',
  };
  const parts = [];
  for (const [i, url] of cluster.urls.entries()) {
    try {
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      const got = [];
      for (const line of text.split('\n')) {
        const m = /^(\w+)(?:\{[^}]*\})? ([\d.e+]+)$/.exec(line);
        if (m && want[m[1]]) got.push(`${want[m[1]]} ${Math.round(Number(m[2]) / 1048576)}`);
        if (m && counts[m[1]]) got.push(`${counts[m[1]]} ${Number(m[2])}`);
      }
      parts.push(`${cluster.procs[i]?.name ?? url} ${got.join(', ')}`);
    } catch (err) {
      parts.push(`${url} metrics unavailable (${err?.message ?? err})`);
    }
  }
  say(`${'node figures (MiB)'.padEnd(24)} ${parts.join(' | ')}`);
}

runMain('bench-rss', main);
