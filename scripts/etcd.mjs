#!/usr/bin/env node
/**
 * A throwaway local 3-member etcd cluster on 127.0.0.1, for `npm run bench -- --compare etcd`.
 * Each member gets its own client and peer port and a data directory under `dir`; the caller
 * stops it (and removes `dir`) when done.
 *
 * Run on its own to poke at it:  node scripts/etcd.mjs [extra etcd flags]
 * (Ctrl-C stops it and removes its data).
 *
 * If no `etcd` binary is found and we run as root, it is installed with apt (Debian/Ubuntu
 * ship it as `etcd-server`; the `etcd` package name is gone from current Debian).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  aptInstall,
  cleanup,
  freePorts,
  installCleanup,
  logTail,
  onCleanup,
  spawnLogged,
  stopChild,
  waitFor,
} from './bench-lib.mjs';

const HOST = '127.0.0.1';

/** Path of an etcd binary, or undefined. */
export function findEtcd() {
  if (process.env.ETCD_BIN && existsSync(process.env.ETCD_BIN)) return process.env.ETCD_BIN;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'etcd'))) return join(dir, 'etcd');
  }
  return undefined;
}

/** Find etcd, installing the Debian package when missing and running as root. */
export function ensureEtcd(log = (m) => process.stderr.write(`${m}\n`)) {
  const found = findEtcd();
  if (found) return found;
  if (process.getuid?.() !== 0) {
    throw new Error('etcd is not installed; install it (Debian/Ubuntu: apt-get install etcd-server) or set ETCD_BIN');
  }
  log('etcd not found');
  aptInstall(['etcd-server'], log);
  const bin = findEtcd();
  if (!bin) throw new Error('apt-get installed etcd-server but no etcd binary is on PATH');
  return bin;
}

/** The etcd version string, e.g. "3.4.23". */
export function etcdVersion(bin) {
  const out = execFileSync(bin, ['--version'], { encoding: 'utf8' });
  return out.match(/etcd Version:\s*(\S+)/)?.[1] ?? out.split('\n')[0];
}

/**
 * Start `members` etcd processes forming one cluster and wait until every member reports
 * healthy (which implies a leader). Resolves to `{ endpoints, members, stop() }`.
 *
 * @param {object} o
 * @param {string} o.dir  parent of the members' data directories and logs
 * @param {string[]} [o.extraArgs]  more etcd flags for every member
 */
export async function startEtcd({ dir, members = 3, bin = ensureEtcd(), extraArgs = [], timeoutMs = 60_000 }) {
  const ports = await freePorts(members * 2);
  const specs = Array.from({ length: members }, (_, i) => ({
    name: `e${i + 1}`,
    client: `http://${HOST}:${ports[2 * i]}`,
    peer: `http://${HOST}:${ports[2 * i + 1]}`,
  }));
  const initialCluster = specs.map((s) => `${s.name}=${s.peer}`).join(',');
  const token = `ringkv-bench-${process.pid}-${Date.now()}`;
  const procs = specs.map((s) => {
    const data = join(dir, s.name);
    mkdirSync(data, { recursive: true });
    const args = [
      '--name', s.name,
      '--data-dir', data,
      '--listen-client-urls', s.client,
      '--advertise-client-urls', s.client,
      '--listen-peer-urls', s.peer,
      '--initial-advertise-peer-urls', s.peer,
      '--initial-cluster', initialCluster,
      '--initial-cluster-token', token,
      '--initial-cluster-state', 'new',
      '--logger', 'zap',
      '--log-level', 'warn',
    ];
    args.push(...extraArgs);
    const child = spawnLogged(bin, args, { logFile: join(dir, `${s.name}.log`) });
    return { ...s, child };
  });
  const stop = async () => {
    await Promise.all(procs.map((p) => stopChild(p.child)));
  };
  try {
    await waitFor(
      'etcd members to report healthy',
      async () => {
        for (const p of procs) {
          if (p.child.exitCode !== null) {
            throw Object.assign(new Error(`etcd ${p.name} exited (${p.child.exitCode}):\n${logTail(p.child.logFile)}`), {
              fatal: true,
            });
          }
        }
        const healths = await Promise.all(
          procs.map((p) => fetch(`${p.client}/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.json())),
        );
        return healths.every((h) => h.health === 'true' || h.health === true);
      },
      { timeoutMs },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    endpoints: procs.map((p) => p.client),
    members: procs.map((p) => ({ name: p.name, pid: p.child.pid, client: p.client, peer: p.peer })),
    stop,
  };
}

async function main() {
  installCleanup();
  const bin = ensureEtcd();
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-etcd-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const cluster = await startEtcd({ dir, bin, extraArgs: process.argv.slice(2) });
  onCleanup(() => cluster.stop());
  process.stdout.write(
    `etcd ${etcdVersion(bin)}: 3 members up, data under ${dir}\n` +
      cluster.members.map((m) => `  ${m.name}  client ${m.client}  peer ${m.peer}  pid ${m.pid}`).join('\n') +
      `\ntry: curl -s ${cluster.endpoints[0]}/v3/kv/put -d '{"key":"Zm9v","value":"YmFy"}'\n` +
      'Ctrl-C stops the cluster and removes its data.\n',
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch(async (err) => {
    process.stderr.write(`etcd.mjs: ${err?.message ?? err}\n`);
    await cleanup();
    process.exit(1);
  });
}
