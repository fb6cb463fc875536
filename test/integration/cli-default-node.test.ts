/**
 * SPEC §1: `npx ringkv get|put|delete|status` talks to `http://127.0.0.1:8081` when neither
 * `--node` nor `RINGKV_NODE` says otherwise. That port is fixed, and on a developer's machine a
 * dev cluster may hold it; so the built CLI runs inside a network namespace of its own, where
 * 127.0.0.1:8081 is free by construction and is served by a small stand-in for a node.
 * Skipped only when not root / no `ip netns` and `CI` is unset (as the fault tests are).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NS_PREFIX, netnsUnavailableReason, removeNamespacesSync, run } from '../fault/netns.mjs';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const reason = netnsUnavailableReason();
const skip = reason !== undefined && !process.env.CI;
// Named like the fault tests' namespaces, so a run killed before cleanup is swept by the next.
const NS = `${NS_PREFIX}-${process.pid}-cli`;

/**
 * The stand-in node: answers GET /v1/kv/k with a value and a context, and prints one line per
 * request (method, path without the query, Host) so the test sees where the CLI connected.
 */
const STAND_IN = `
const http = require('node:http');
http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  console.log(JSON.stringify({ method: req.method, path, host: req.headers.host }));
  if (req.method === 'GET' && path === '/v1/kv/k') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Ringkv-Context': 'AQE', 'Last-Modified': new Date(0).toUTCString() });
    res.end('from the default node');
    return;
  }
  res.writeHead(404, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ error: 'NOT_FOUND', message: 'no such key' }));
}).listen(8081, '127.0.0.1', () => console.log('listening'));
`;

let standIn: ChildProcess | undefined;
const seen: string[] = [];

describe.skipIf(skip)(
  skip ? `CLI default node: SKIPPED (${reason}; never skipped when CI is set)` : 'CLI default node',
  () => {
    beforeAll(async () => {
      removeNamespacesSync(NS);
      await run('ip', ['netns', 'add', NS]);
      await run('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
      const child = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', STAND_IN], { stdio: ['ignore', 'pipe', 'inherit'] });
      standIn = child;
      let buffered = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the stand-in node did not start within 10 s')), 10_000);
        child.once('exit', (code) => reject(new Error(`the stand-in node exited (${code})`)));
        child.stdout?.on('data', (chunk: Buffer) => {
          buffered += chunk.toString();
          const lines = buffered.split('\n');
          buffered = lines.pop() ?? '';
          for (const line of lines) {
            if (line === 'listening') {
              clearTimeout(timer);
              resolve();
            } else if (line !== '') seen.push(line);
          }
        });
      });
    });

    afterAll(() => {
      standIn?.kill('SIGKILL');
      // Kills whatever is left inside, then deletes the namespace.
      removeNamespacesSync(NS);
    });

    it('without --node or RINGKV_NODE, reads from http://127.0.0.1:8081', async () => {
      // Only PATH and HOME: no RINGKV_NODE can leak in from the environment running the tests.
      const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
      const got = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          'ip',
          ['netns', 'exec', NS, process.execPath, CLI, 'get', 'k'],
          { env, timeout: 20_000 },
          (err, stdout, stderr) => {
            const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
            resolve({ code, stdout: String(stdout), stderr: String(stderr) });
          },
        );
      });
      expect(got.stderr, got.stderr).not.toMatch(/error/i);
      expect(got.code, JSON.stringify({ got, seen })).toBe(0);
      expect(got.stdout).toBe('from the default node');
      expect(seen.map((l) => JSON.parse(l))).toEqual([{ method: 'GET', path: '/v1/kv/k', host: '127.0.0.1:8081' }]);
    });
  },
);
