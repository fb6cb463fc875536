#!/usr/bin/env node
/**
 * `npm run bench:ab`: compare two ringkv variants on this machine, in alternating runs.
 *
 * A variant is a build (the working tree's dist/, or any git revision, built into a temp
 * checkout) plus environment for its nodes. Round 1 runs A then B, round 2 B then A, and so on;
 * each run is a fresh 3-node cluster with its own prewarm, loaded exactly as `npm run bench`
 * loads it. The summary compares the variants within each round (see ab-stats.mjs for why).
 *
 *   npm run bench:ab -- --b-env RINGKV_OBJECT_CACHE_MB=8 --rounds 4 --sizes 256 --workloads get
 *   npm run bench:ab -- --a HEAD~1 --b . --rounds 3
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { summarizeAb } from './ab-stats.mjs';
import { LOAD_FLAGS, loadOptions, optionsOrExit, parseFlags, runDir, runMain, splitList, stopping } from './bench-lib.mjs';
import { benchTarget } from './bench.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage: node scripts/bench-ab.mjs [flags]      (npm run bench:ab -- [flags] builds first)
  --a REV             variant A's code: "." (this tree's dist/, the default) or a git revision,
                      exported into a temp dir and built there
  --b REV             variant B's code (default ".")
  --a-env K=V,K=V     environment added to variant A's nodes (e.g. RINGKV_OBJECT_CACHE_MB=8)
  --b-env K=V,K=V     the same for B
  --rounds R          rounds of one A run and one B run, alternating which goes first (default 3)
  --duration S, --warmup S, --prewarm S, --concurrency C, --keys K, --sizes LIST, --workloads LIST
                      as for npm run bench (defaults: 10, 2, 10, 64, 10000, 256, put,get)
  --json FILE         write every run and the summary as JSON
`;

const FLAGS = {
  a: 'string',
  b: 'string',
  'a-env': 'string',
  'b-env': 'string',
  rounds: 'number',
  ...LOAD_FLAGS,
  json: 'string',
  help: 'boolean',
};

const say = (m) => process.stdout.write(`${m}\n`);

function parseEnv(flag, text) {
  const env = {};
  for (const pair of splitList(text ?? '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--${flag}: expected K=V, got ${pair}`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

function parseOptions(argv) {
  const f = parseFlags(argv, FLAGS);
  const rounds = f.rounds ?? 3;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
  const load = loadOptions(f, { sizes: '256', workloads: 'put,get', prewarmS: 10 });
  const variants = {
    A: { rev: f.a ?? '.', env: parseEnv('a-env', f['a-env']) },
    B: { rev: f.b ?? '.', env: parseEnv('b-env', f['b-env']) },
  };
  if (!f.help && variants.A.rev === variants.B.rev && JSON.stringify(variants.A.env) === JSON.stringify(variants.B.env)) {
    throw new Error('A and B are the same variant: give --a/--b or --a-env/--b-env');
  }
  return {
    help: f.help,
    rounds,
    variants,
    json: f.json,
    ...load,
    single: false,
  };
}

/** The checkout to run for a revision: this one for ".", else a temp export of it, built. */
function checkout(rev, baseDir, name) {
  if (rev === '.') {
    if (!existsSync(join(root, 'dist', 'cli.js'))) throw new Error('dist/ is missing: run `npm run build`');
    return { tree: root, describe: 'this tree' };
  }
  const commit = execFileSync('git', ['-C', root, 'rev-parse', '--verify', `${rev}^{commit}`], { encoding: 'utf8' }).trim();
  const tree = join(baseDir, `src-${name}`);
  mkdirSync(tree, { recursive: true });
  say(`== ${name}: exporting ${rev} (${commit.slice(0, 10)}) and building it`);
  const archive = execFileSync('git', ['-C', root, 'archive', '--format=tar', commit], { maxBuffer: 256 * 2 ** 20 });
  execFileSync('tar', ['-x', '-C', tree], { input: archive });
  // Same dependencies as this tree: a revision that changed package.json is not comparable
  // this way (build it in its own clone instead).
  symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'), 'dir');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
    cwd: tree,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return { tree, describe: `${rev} (${commit.slice(0, 10)})` };
}

const fmt = (n, digits = 0) => (n === undefined ? '-' : n.toFixed(digits));

function formatSummary(rows) {
  const lines = [
    ['workload', 'value', 'rounds', 'ops/s A', 'ops/s B', 'B/A', 'B faster', 'µs/op A', 'µs/op B', 'B/A', 'B cheaper', 'p99 A', 'p99 B', 'B/A', 'errors A/B'],
  ];
  for (const r of rows) {
    lines.push([
      r.workload,
      `${r.valueSize} B`,
      String(r.rounds),
      fmt(r.a.ops),
      fmt(r.b.ops),
      fmt(r.opsRatio, 2),
      `${r.bFasterRounds}/${r.rounds}`,
      fmt(r.a.us),
      fmt(r.b.us),
      fmt(r.usRatio, 2),
      r.bCheaperRounds === undefined ? '-' : `${r.bCheaperRounds}/${r.rounds}`,
      fmt(r.a.p99Us / 1000, 1),
      fmt(r.b.p99Us / 1000, 1),
      fmt(r.p99Ratio, 2),
      `${r.a.failures}/${r.b.failures}`,
    ]);
  }
  const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  return lines.map((l) => l.map((v, c) => (c < 2 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ')).join('\n');
}

async function main() {
  const opts = optionsOrExit('bench-ab', parseOptions, USAGE);
  if (opts === undefined) return;
  const baseDir = runDir('ringkv-bench-ab-');

  const variants = {};
  for (const name of ['A', 'B']) {
    const v = opts.variants[name];
    const { tree, describe } = checkout(v.rev, baseDir, name);
    const envText = Object.entries(v.env)
      .map(([k, x]) => `${k}=${x}`)
      .join(' ');
    variants[name] = { name, tree, env: v.env, describe: `${describe}${envText ? `, env ${envText}` : ''}` };
  }
  say(
    `ringkv bench:ab: ${os.cpus().length} cores, node ${process.version}; ${opts.rounds} rounds, ` +
      `${opts.concurrency} clients, ${opts.keys} keys, values ${opts.sizes.join('/')} B, workloads ${opts.workloads.join(',')}, ` +
      `${opts.prewarmMs / 1000} s prewarm, ${opts.warmupMs / 1000} + ${opts.durationMs / 1000} s per run\n` +
      `  A: ${variants.A.describe}\n  B: ${variants.B.describe}`,
  );

  const runs = [];
  for (let round = 1; round <= opts.rounds; round++) {
    const order = round % 2 === 1 ? ['A', 'B'] : ['B', 'A'];
    for (const name of order) {
      // A fresh cluster on fresh data for every run; the data goes as soon as it is done.
      const dir = join(baseDir, `round${round}-${name}`);
      const results = [];
      try {
        await benchTarget('ringkv', dir, opts, results, {}, variants[name]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      if (stopping()) return;
      for (const { result } of results) runs.push({ round, variant: name, result });
    }
  }

  const rows = summarizeAb(runs);
  say(`\n== A/B over ${opts.rounds} rounds (medians; "B faster" and "B cheaper" count rounds; p99 in ms)`);
  say(formatSummary(rows));
  if (opts.json) {
    const doc = { when: new Date().toISOString(), options: opts, variants, runs, summary: rows };
    writeFileSync(opts.json, `${JSON.stringify(doc, null, 2)}\n`);
    say(`\nwrote ${opts.json}`);
  }
}

runMain('bench-ab', main);
