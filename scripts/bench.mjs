#!/usr/bin/env node
/**
 * `npm run bench`: start a throwaway local ringkv cluster (3 nodes, zones a/b/c, N=3 R=2 W=2),
 * drive it with the closed-loop load generator of bench-lib.mjs (PUT, GET, 50/50 mix; 256 B and
 * 4 KiB values), optionally do the same against the bare fastify+LevelDB baseline and a local
 * 3-member etcd, and print throughput, latency percentiles, errors and peak RSS.
 * See docs/benchmarks.md for what the figures mean.
 *
 * Everything it starts is stopped, and its temp directories removed, on success, on error and
 * on Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  closePools,
  formatJointTarget,
  formatRatios,
  formatRepeats,
  formatRun,
  formatTable,
  freePorts,
  jointTarget,
  LOAD_FLAGS,
  loadOptions,
  logTail,
  MemoryWatcher,
  makeKeyState,
  makePools,
  onCleanup,
  optionsOrExit,
  parseFlags,
  populate,
  protocols,
  quiesce,
  runDir,
  runLoad,
  runMain,
  runtimeSettings,
  spawnLogged,
  splitList,
  stopChild,
  stopping,
  summarizeRepeats,
  waitFor,
} from './bench-lib.mjs';
import { ensureEtcd, etcdVersion, startEtcd } from './etcd.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const HOST = '127.0.0.1';

const USAGE = `usage: node scripts/bench.mjs [flags]      (npm run bench -- [flags] builds first)
  --duration S        measured seconds per run (default 10)
  --warmup S          unmeasured warm-up seconds before each run (default 2)
  --prewarm S         unmeasured mixed load on each target right after it starts, before any
                      run, so Node has compiled its hot code (default 15; 0 = none)
  --concurrency C     closed-loop clients (default 64)
  --keys K            distinct keys per value size (default 10000)
  --sizes 256,4096    value sizes in bytes
  --workloads put,get,mix
  --single            one ringkv node (n=r=w=1) instead of three
  --baseline          also run the load against scripts/bench-baseline.mjs (fastify + LevelDB)
  --compare etcd      also run it against a local 3-member etcd (installed with apt if missing)
  --replicated        also run it against scripts/bench-replicated.mjs (3 processes moving
                      ringkv's N=3 R=2 W=2 messages on the same stack, nothing else)
  --targets LIST      exactly these, in this order: ringkv,baseline,replicated,etcd
  --repeat N          the whole comparison N times, each target fresh each time, the targets'
                      order reversed every other time; then each ratio per run, their median
                      and how many runs reached 2x (default 1)
  --json FILE         write all results as JSON
  --keep              keep the temp dir (data and process logs) and print its path
  --cpu-prof DIR      run each ringkv node under node --cpu-prof, writing its .cpuprofile into DIR
`;

const FLAGS = {
  ...LOAD_FLAGS,
  single: 'boolean',
  baseline: 'boolean',
  replicated: 'boolean',
  compare: 'string',
  targets: 'string',
  json: 'string',
  repeat: 'number',
  keep: 'boolean',
  'cpu-prof': 'string',
  help: 'boolean',
};

function parseOptions(argv) {
  const f = parseFlags(argv, FLAGS);
  const load = loadOptions(f, { sizes: '256,4096', workloads: 'put,get,mix', prewarmS: 15 });
  let targets = ['ringkv'];
  if (f.baseline) targets.push('baseline');
  if (f.replicated) targets.push('replicated');
  if (f.compare !== undefined) {
    for (const c of splitList(f.compare)) {
      if (c !== 'etcd') throw new Error(`--compare: only etcd is supported, not ${c}`);
      targets.push('etcd');
    }
  }
  if (f.targets !== undefined) targets = splitList(f.targets);
  for (const t of targets) if (!protocols[t]) throw new Error(`--targets: unknown ${t}`);
  const repeat = f.repeat ?? 1;
  if (!(Number.isInteger(repeat) && repeat >= 1)) throw new Error(`--repeat: expected a whole number of runs, at least 1, got ${f.repeat}`);
  return {
    repeat,
    help: f.help,
    ...load,
    single: Boolean(f.single),
    targets: [...new Set(targets)],
    json: f.json,
    keep: Boolean(f.keep),
    cpuProf: f['cpu-prof'],
  };
}

const say = (m) => process.stdout.write(`${m}\n`);

/** How a ringkv node runs in production (scripts/runtime.json of each tree), resolved once per tree. */
const runtimes = new Map();

function runtimeOf(tree) {
  if (!runtimes.has(tree)) runtimes.set(tree, runtimeSettings(tree, say));
  return runtimes.get(tree);
}

// ---------------------------------------------------------------------------------------------
// Backends. Each start* resolves to { urls, procs: [{ name, pid }], stop(), settle?(), describe }.

/**
 * Start a local ringkv cluster in `dir` (also used by bench-rss.mjs and bench-ab.mjs). `tree` is
 * the checkout whose dist/ and scripts/runtime.json run (this one unless bench-ab built another);
 * `env` is added to the nodes' environment (e.g. RINGKV_OBJECT_CACHE_MB).
 */
export async function startRingkv(dir, { single, cpuProf, tree = root, env = {} }) {
  const cli = join(tree, 'dist', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` (npm run bench does it for you)`);
  const runtime = runtimeOf(tree);
  const count = single ? 1 : 3;
  const ports = await freePorts(count);
  const secret = randomBytes(18).toString('base64url');
  const nodes = ports.map((port, i) => ({ id: `n${i + 1}`, port, zone: 'abc'[i], url: `http://${HOST}:${port}` }));
  const seeds = nodes.map((n) => `${HOST}:${n.port}`).join(',');
  const children = nodes.map((n) => {
    const data = join(dir, n.id);
    const args = [cli, 'node', '--id', n.id, '--listen', `${HOST}:${n.port}`, '--data', data, '--zone', n.zone];
    if (single) args.push('--n', '1', '--r', '1', '--w', '1');
    else args.push('--seeds', seeds, '--n', '3', '--r', '2', '--w', '2');
    // --cpu-prof: V8 writes the profile when the node exits cleanly (SIGTERM -> graceful stop).
    const prof = cpuProf === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProf, '--cpu-prof-name', `${n.id}.cpuprofile`];
    // The runtime settings the Docker image ships (node flags, env incl. the allocator); the
    // secret goes through the environment, not the command line (`ps` shows argv to all).
    return spawnLogged(process.execPath, [...runtime.nodeFlags, ...prof, ...args], {
      cwd: root,
      logFile: join(dir, `${n.id}.log`),
      env: { ...process.env, ...runtime.env, ...env, ...(single ? {} : { RINGKV_SECRET: secret }) },
    });
  });
  const stop = () => Promise.all(children.map((c) => stopChild(c)));
  try {
    await waitFor(`ringkv: every node to show ${count} members up with one ring checksum`, async () => {
      children.forEach((c, i) => {
        if (c.exitCode !== null || c.signalCode !== null) {
          const why = c.signalCode ?? `code ${c.exitCode}`;
          throw Object.assign(new Error(`ringkv ${nodes[i].id} exited (${why}):\n${logTail(c.logFile)}`), { fatal: true });
        }
      });
      const views = await Promise.all(
        nodes.map((n) => fetch(`${n.url}/v1/cluster`, { signal: AbortSignal.timeout(2000) }).then((r) => r.json())),
      );
      const sums = new Set(views.map((v) => v.ring?.checksum));
      return (
        sums.size === 1 &&
        !sums.has(undefined) &&
        views.every((v) => v.members?.length === count && v.members.every((m) => m.status === 'up'))
      );
    });
  } catch (err) {
    await stop();
    throw err;
  }
  /**
   * Between runs: a W=2 write returns before the third replica has it, and a replica that was
   * slow gets a hint. Let that tail drain so it is not billed to the next run.
   */
  const settle = async () => {
    await sleep(500);
    try {
      await waitFor(
        'ringkv hints to drain',
        async () => {
          const views = await Promise.all(
            nodes.map((n) => fetch(`${n.url}/v1/cluster`, { signal: AbortSignal.timeout(2000) }).then((r) => r.json())),
          );
          return views.every((v) => (v.hints?.pending ?? 0) === 0 && (v.transfers?.pending ?? 0) === 0);
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
    } catch (err) {
      say(`   (${err.message})`);
    }
  };
  return {
    urls: nodes.map((n) => n.url),
    procs: nodes.map((n, i) => ({ name: `ringkv ${n.id}`, pid: children[i].pid })),
    stop,
    settle,
    describe: `${single ? 'ringkv, 1 node (n=r=w=1)' : 'ringkv, 3 nodes in zones a/b/c (N=3 R=2 W=2)'}, allocator ${runtime.allocator}`,
  };
}

async function startBaselineProcess(dir) {
  const [port] = await freePorts(1);
  const url = `http://${HOST}:${port}`;
  const child = spawnLogged(
    process.execPath,
    [join(root, 'scripts', 'bench-baseline.mjs'), '--listen', `${HOST}:${port}`, '--data', join(dir, 'db')],
    { cwd: root, logFile: join(dir, 'baseline.log') },
  );
  const stop = () => stopChild(child);
  try {
    await waitFor('the baseline server', async () => {
      if (child.exitCode !== null) {
        throw Object.assign(new Error(`baseline exited:\n${logTail(child.logFile)}`), { fatal: true });
      }
      const r = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(2000) });
      return r.ok;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    urls: [url],
    procs: [{ name: 'baseline', pid: child.pid }],
    stop,
    describe: 'baseline: one fastify + classic-level process, no replication',
  };
}

/**
 * Three scripts/bench-replicated.mjs processes: the same messages as ringkv at N=3 R=2 W=2 on
 * the same libraries and runtime settings, and nothing else (the ceiling of a replicated
 * store on this stack).
 */
async function startReplicatedCluster(dir) {
  const runtime = runtimeOf(root);
  const ports = await freePorts(3);
  const secret = randomBytes(18).toString('base64url');
  const addrs = ports.map((p) => `${HOST}:${p}`);
  const children = addrs.map((addr, i) => {
    const peers = [1, 2].map((k) => addrs[(i + k) % 3]);
    return spawnLogged(
      process.execPath,
      [
        ...runtime.nodeFlags,
        join(root, 'scripts', 'bench-replicated.mjs'),
        '--listen',
        addr,
        '--peers',
        peers.join(','),
        '--data',
        join(dir, `r${i + 1}`),
      ],
      { cwd: root, logFile: join(dir, `r${i + 1}.log`), env: { ...process.env, ...runtime.env, RINGKV_SECRET: secret } },
    );
  });
  const stop = () => Promise.all(children.map((c) => stopChild(c)));
  try {
    await waitFor('the replicated baseline', async () => {
      children.forEach((c, i) => {
        if (c.exitCode !== null || c.signalCode !== null) {
          throw Object.assign(new Error(`replicated r${i + 1} exited:\n${logTail(c.logFile)}`), { fatal: true });
        }
      });
      const oks = await Promise.all(
        addrs.map((a) => fetch(`http://${a}/v1/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok)),
      );
      return oks.every(Boolean);
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    urls: addrs.map((a) => `http://${a}`),
    procs: children.map((c, i) => ({ name: `replicated r${i + 1}`, pid: c.pid })),
    stop,
    describe: `replicated baseline: 3 fastify + undici + classic-level processes, N=3 R=2 W=2 messages only, allocator ${runtime.allocator}`,
  };
}

async function startEtcdCluster(dir) {
  const bin = ensureEtcd(say);
  const cluster = await startEtcd({ dir, bin });
  return {
    urls: cluster.endpoints,
    procs: cluster.members.map((m) => ({ name: `etcd ${m.name}`, pid: m.pid })),
    stop: cluster.stop,
    describe: `etcd ${etcdVersion(bin)}, 3 members (Raft, fsync per commit), v3 JSON gateway`,
  };
}

const starters = {
  ringkv: (dir, opts) => startRingkv(dir, opts),
  baseline: (dir) => startBaselineProcess(dir),
  replicated: (dir) => startReplicatedCluster(dir),
  etcd: (dir) => startEtcdCluster(dir),
};

// ---------------------------------------------------------------------------------------------

/**
 * Start one target, prewarm it, run every workload and size against it, stop it. `variant`
 * (bench-ab.mjs) names a ringkv build and environment to start instead of this tree's; its
 * name labels the results.
 */
export async function benchTarget(target, baseDir, opts, results, memory, variant) {
  const label = variant?.name ?? target;
  const dir = join(baseDir, label);
  mkdirSync(dir, { recursive: true });
  say(`\n== ${label}: starting...`);
  const backend = await starters[target](dir, { ...opts, ...(variant ? { tree: variant.tree, env: variant.env } : {}) });
  onCleanup(backend.stop);
  say(`== ${backend.describe}; endpoints ${backend.urls.join(' ')}`);
  const watcher = new MemoryWatcher(backend.procs);
  const pools = makePools(backend.urls, opts.concurrency);
  const protocol = protocols[target];
  try {
    if (opts.prewarmMs > 0) {
      // A fresh process has not compiled its hot code yet: V8 spends a quarter of the CPU in
      // its optimising compiler for the first ~15 s under this load (perf, 3 ringkv nodes),
      // which no long-running server pays. Same mixed load for every target, on its own keys.
      // The smallest values only: the code paths are the same, and a prewarm of large values
      // would leave LevelDB compactions running into the first measured runs.
      const valueSize = Math.min(...opts.sizes);
      say(`   prewarm: ${opts.prewarmMs / 1000} s of mixed load (${valueSize} B), not measured`);
      const state = makeKeyState({ prefix: `prewarm-${valueSize}-`, keys: opts.keys, valueSize });
      await populate({ protocol, pools, state, concurrency: opts.concurrency });
      await runLoad({ protocol, pools, state, workload: 'mix', concurrency: opts.concurrency, durationMs: opts.prewarmMs, warmupMs: 0 });
      await backend.settle?.();
    }
    const pids = backend.procs.map((p) => p.pid);
    for (const valueSize of opts.sizes) {
      const state = makeKeyState({ prefix: `bench-${valueSize}-`, keys: opts.keys, valueSize });
      for (const workload of opts.workloads) {
        if (stopping()) return;
        if (workload !== 'put') {
          const failed = await populate({ protocol, pools, state, concurrency: opts.concurrency });
          if (Object.keys(failed).length) say(`   (populating ${valueSize} B keys: failures ${JSON.stringify(failed)})`);
        }
        // Start every run on quiet servers: what the last one left (compactions) is not billed here.
        const waited = await quiesce(pids, { maxMs: 20_000 });
        if (waited > 2000) say(`   (waited ${(waited / 1000).toFixed(1)} s for the servers to go quiet)`);
        const result = await runLoad({
          protocol,
          pools,
          state,
          workload,
          concurrency: opts.concurrency,
          durationMs: opts.durationMs,
          warmupMs: opts.warmupMs,
          serverPids: backend.procs.map((p) => p.pid),
        });
        if (stopping()) return;
        results.push({ target: label, result });
        say(formatRun(label, result));
        await backend.settle?.();
      }
    }
  } finally {
    await closePools(pools);
    Object.assign(memory, watcher.stop());
    await backend.stop();
  }
}

async function main() {
  const opts = optionsOrExit('bench', parseOptions, USAGE);
  if (opts === undefined) return;
  const baseDir = runDir('ringkv-bench-', { keep: opts.keep });

  const cpus = os.cpus();
  const machine = {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
  };
  say(
    `ringkv bench: ${machine.cpus} x ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}\n` +
      `  ${opts.concurrency} clients, ${opts.keys} keys, values ${opts.sizes.join('/')} B, ` +
      `${opts.prewarmMs / 1000} s prewarm per target, ${opts.warmupMs / 1000} s warm-up + ${opts.durationMs / 1000} s per run, ` +
      `workloads ${opts.workloads.join(',')}, targets ${opts.targets.join(',')}\n` +
      '  latencies in ms; cpu = cores busy (100% = one core) in the load generator / all server processes',
  );

  const runs = [];
  const memory = {};
  for (let k = 0; k < opts.repeat; k++) {
    // Every other run reverses the targets' order, so a drift of the machine over the session
    // does not always land on the same target's half.
    const order = k % 2 === 0 ? opts.targets : [...opts.targets].reverse();
    if (opts.repeat > 1) say(`\n=== run ${k + 1} of ${opts.repeat}: ${order.join(', ')}`);
    const results = [];
    const runMemory = {};
    // A fresh directory per run: a target never starts on the data of an earlier run.
    const runBase = opts.repeat > 1 ? join(baseDir, `run${k + 1}`) : baseDir;
    for (const target of order) {
      await benchTarget(target, runBase, opts, results, runMemory);
      if (stopping()) return;
    }
    // Its data is done with (~1.4 GB per run at the defaults, mostly etcd's); --keep keeps it all.
    if (runBase !== baseDir && !opts.keep) rmSync(runBase, { recursive: true, force: true });
    runs.push(results);
    printRun(results, runMemory, opts);
    for (const [name, mib] of Object.entries(runMemory)) memory[name] = Math.max(memory[name] ?? 0, mib);
  }
  if (opts.repeat > 1) {
    for (const other of ['etcd', 'baseline', 'replicated']) {
      if (!opts.targets.includes('ringkv') || !opts.targets.includes(other)) continue;
      const summary = summarizeRepeats(runs, 'ringkv', other);
      if (!summary) continue;
      say(`\n== ringkv / ${other} over ${opts.repeat} runs (ops/s ratio per run; steal shown where either side had 2 % or more, other work's CPU where either had 10 % or more)`);
      say(formatRepeats(summary));
      sayJointTarget(summary, other);
    }
  }

  if (opts.json) {
    const results = runs.flatMap((rs, k) => rs.map((r) => (opts.repeat > 1 ? { ...r, run: k + 1 } : r)));
    const doc = { when: new Date().toISOString(), machine, options: opts, results, peakRssMiB: memory };
    writeFileSync(opts.json, `${JSON.stringify(doc, null, 2)}\n`);
    say(`\nwrote ${opts.json}`);
  }
}

/** Which runs met the joint target against `other` (see jointTarget), per value size. */
function sayJointTarget(summary, other) {
  const joint = jointTarget(summary);
  if (joint.length === 0) return;
  say(`\n== PUT and GET both at ${joint[0].goal}x ${other} in the same run, p99 no worse, no errors`);
  say(formatJointTarget(joint));
}

/** One run's tables: every result, the ratios of ringkv to each other target, peak RSS. */
function printRun(results, memory, opts) {
  say('\n== results');
  say(formatTable(results));
  for (const other of ['etcd', 'baseline', 'replicated']) {
    if (!opts.targets.includes('ringkv') || !opts.targets.includes(other)) continue;
    const text = formatRatios(results, 'ringkv', other);
    if (text) {
      say(`\n== ringkv / ${other} (ops/s above 1 = ringkv faster; latency above 1 = ringkv slower)`);
      say(text);
      sayJointTarget(summarizeRepeats([results], 'ringkv', other) ?? [], other);
    }
  }
  say('\n== peak RSS (MiB)');
  for (const [name, mib] of Object.entries(memory)) say(`  ${name.padEnd(12)} ${mib}`);
  const siblings = results.reduce((a, r) => a + r.result.counts.siblings, 0);
  if (siblings > 0) say(`\nwarning: ${siblings} GETs answered 300 (siblings); the PUT loop should never cause any`);
}

// Run only as a script: bench-rss.mjs imports startRingkv from here.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runMain('bench', main);
}
