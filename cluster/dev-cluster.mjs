#!/usr/bin/env node
// The local dev cluster of SPEC §1 (`npm start`): three nodes on 127.0.0.1:8081-8083 in zones
// a, b, c, data under ./data/, one random secret shared by the three. Ctrl-C stops all three.
// RINGKV_DEV_PORTS (three comma-separated ports) and RINGKV_DEV_DATA (the data directory) move
// it elsewhere, so a test can run it next to anything already on those ports. The nodes run
// with the image's Node flags and environment (scripts/runtime.json), the allocator included
// when this machine has it (it is not installed here: a warning says so and they run without).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, isAbsolute, join } from 'node:path';
import { runtimeSettings } from '../scripts/runtime-settings.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli.js');
const secret = process.env.RINGKV_SECRET || randomBytes(18).toString('base64url');
const ports = (process.env.RINGKV_DEV_PORTS || '8081,8082,8083').split(',').map((p) => Number(p.trim()));
if (ports.length !== 3 || !ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) {
  process.stderr.write(`RINGKV_DEV_PORTS: expected three comma-separated ports, got "${process.env.RINGKV_DEV_PORTS}"\n`);
  process.exit(2);
}
const dataRoot = process.env.RINGKV_DEV_DATA || 'data';
const nodes = [
  { id: 'n1', port: ports[0], zone: 'a' },
  { id: 'n2', port: ports[1], zone: 'b' },
  { id: 'n3', port: ports[2], zone: 'c' },
];
const runtime = runtimeSettings(root);
const seeds = nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
const colors = ['\x1b[36m', '\x1b[35m', '\x1b[33m'];
const reset = '\x1b[0m';
const tty = process.stdout.isTTY;

/** Render one pino JSON line readably: time level msg key=value... */
function pretty(line) {
  try {
    const o = JSON.parse(line);
    const { level, time, msg, pid: _p, hostname: _h, node: _n, ...rest } = o;
    const lvl = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }[level] ?? level;
    const extra = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${new Date(time).toISOString().slice(11, 23)} ${lvl} ${msg ?? ''} ${extra}`.trimEnd();
  } catch {
    return line;
  }
}

const children = nodes.map((n, i) => {
  const child = spawn(
    process.execPath,
    [
      ...runtime.nodeFlags,
      cli,
      'node',
      '--id',
      n.id,
      '--listen',
      `127.0.0.1:${n.port}`,
      '--data',
      join(dataRoot, n.id),
      '--zone',
      n.zone,
      '--seeds',
      seeds,
    ],
    { cwd: root, env: { ...process.env, ...runtime.env, RINGKV_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const prefix = tty ? `${colors[i]}[${n.id}]${reset} ` : `[${n.id}] `;
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (l) => process.stdout.write(`${prefix}${pretty(l)}\n`));
  }
  child.on('exit', (code, signal) => {
    process.stdout.write(`${prefix}exited (${signal ?? code})\n`);
    if (!stopping) stop(1);
  });
  return child;
});

let stopping = false;
function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  process.stdout.write('\nstopping the dev cluster...\n');
  let left = children.filter((c) => c.exitCode === null && c.signalCode === null).length;
  if (left === 0) process.exit(code);
  const force = setTimeout(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }, 10_000);
  for (const c of children) {
    c.once('exit', () => {
      if (--left === 0) {
        clearTimeout(force);
        process.exit(code);
      }
    });
    c.kill('SIGTERM');
  }
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

async function waitReady() {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !stopping) {
    try {
      const views = await Promise.all(nodes.map((n) => fetch(`http://127.0.0.1:${n.port}/v1/cluster`).then((r) => r.json())));
      const sums = new Set(views.map((v) => v.ring.checksum));
      if (sums.size === 1 && views.every((v) => v.members.filter((m) => m.status === 'up').length === nodes.length)) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

waitReady().then((ok) => {
  if (stopping) return;
  const lines = [
    '',
    ok ? 'ringkv dev cluster is up (3 nodes, zones a b c)' : 'ringkv dev cluster started (not converged yet; see logs)',
    ...nodes.map((n) => `  ${n.id}  http://127.0.0.1:${n.port}   zone ${n.zone}   data ${isAbsolute(dataRoot) ? '' : './'}${join(dataRoot, n.id)}`),
    `  cluster secret (admin routes): ${secret}`,
    '',
    'try:',
    `  curl -i -X PUT --data-binary 'hello' -H 'Content-Type: text/plain' http://127.0.0.1:${ports[0]}/v1/kv/greeting`,
    `  curl -i http://127.0.0.1:${ports[1]}/v1/kv/greeting`,
    `  curl -s http://127.0.0.1:${ports[2]}/v1/cluster`,
    '',
    'Ctrl-C stops all three nodes.',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
});
