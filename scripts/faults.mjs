#!/usr/bin/env node
/**
 * Long fault-injection runs: `npm run test:faults -- --seconds 300 --seed 7`.
 *
 * Builds nothing itself (`npm run test:faults` builds first); runs the same code as the CI
 * schedule (test/fault/run.mjs) with a random fault schedule from the seed, then prints a
 * summary of the history, the faults injected and the checker's verdict. Exit code 0 when
 * the history is valid, 1 when it is not (the run directory with history and node logs is
 * kept), 2 on bad arguments. Needs root and iproute2 + iptables (network namespaces).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FAULT_KINDS, formatReport, netnsUnavailableReason, randomSchedule, runFaultTest } from '../test/fault/run.mjs';

const usage = `usage: npm run test:faults -- [--seconds 300] [--seed N] [--nodes 3|5] [--kinds isolate,halves,bridge,kill,pause,isolate-kill]
                                [--gossip-interval-ms 200] [--anti-entropy-interval-ms 2000] [--hinted-handoff true|false]
                                [--writers 4] [--key-writers 2] [--final-deadline-ms 60000] [--keep] [--json report.json]`;

let args;
try {
  args = parseArgs({
    options: {
      seconds: { type: 'string', default: '300' },
      seed: { type: 'string' },
      nodes: { type: 'string', default: '3' },
      kinds: { type: 'string', default: FAULT_KINDS.join(',') },
      'gossip-interval-ms': { type: 'string', default: '200' },
      'anti-entropy-interval-ms': { type: 'string', default: '2000' },
      'hinted-handoff': { type: 'string', default: 'true' },
      writers: { type: 'string', default: '4' },
      'key-writers': { type: 'string', default: '2' },
      'final-deadline-ms': { type: 'string', default: '60000' },
      keep: { type: 'boolean', default: false },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  }).values;
} catch (err) {
  console.error(`${err.message}\n${usage}`);
  process.exit(2);
}
if (args.help) {
  console.log(usage);
  process.exit(0);
}

function int(name, min, max) {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(`--${name}: must be an integer in ${min}..${max}, got "${args[name]}"`);
    process.exit(2);
  }
  return v;
}

const seconds = int('seconds', 5, 86_400);
const seed = args.seed === undefined ? Math.floor(Math.random() * 1_000_000) : int('seed', 0, 2 ** 31 - 1);
const nodes = int('nodes', 3, 9);
const kinds = args.kinds.split(',').filter(Boolean);
for (const k of kinds) {
  if (!FAULT_KINDS.includes(k)) {
    console.error(`--kinds: unknown fault "${k}" (known: ${FAULT_KINDS.join(', ')})`);
    process.exit(2);
  }
}
if (!['true', 'false'].includes(args['hinted-handoff'])) {
  console.error('--hinted-handoff: must be true or false');
  process.exit(2);
}
const reason = netnsUnavailableReason();
if (reason) {
  console.error(`fault runs need network namespaces: ${reason}`);
  process.exit(2);
}

const ids = Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
const schedule = randomSchedule({ seed, nodes: ids, seconds, kinds });
console.log(`seed ${seed}: ${schedule.length} faults over ~${seconds} s on ${nodes} nodes (replay: --seed ${seed} --seconds ${seconds} --nodes ${nodes})`);

let report;
try {
  report = await runFaultTest({
    seed,
    nodes,
    schedule,
    gossipIntervalMs: int('gossip-interval-ms', 10, 60_000),
    antiEntropyIntervalMs: int('anti-entropy-interval-ms', 10, 3_600_000),
    hintedHandoff: args['hinted-handoff'] === 'true',
    workload: {
      set: { writers: int('writers', 1, 64) },
      keys: { writers: int('key-writers', 0, 64) },
      // Two deletes per partition, plus two keys that are never deleted (controls).
      del: { keys: 2 * schedule.filter((f) => ['isolate', 'halves', 'bridge', 'isolate-kill'].includes(f.kind)).length + 2 },
    },
    finalDeadlineMs: int('final-deadline-ms', 1000, 3_600_000),
    keepDir: args.keep,
    log: (m) => console.log(m),
  });
} catch (err) {
  console.error(err.message);
  if (err.report) {
    console.error(formatReport({ ...err.report, valid: false }));
    if (args.json) writeFileSync(args.json, JSON.stringify(err.report, null, 2));
  }
  process.exit(1);
}
console.log(`\n${formatReport(report)}`);
if (args.json) writeFileSync(args.json, JSON.stringify(report, null, 2));
process.exit(report.valid ? 0 : 1);
