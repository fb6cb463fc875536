/**
 * What SPEC §1 and §3 promise an installed package: `import { Client } from 'ringkv/client'`,
 * the root entry, and the `ringkv` command. The tests use dist/ directly everywhere else, so a
 * broken `exports` or `bin` in package.json would otherwise go unnoticed. Node resolves a
 * package's own name through its `exports` (self-reference), which is how an installed copy
 * resolves too.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

describe('the package as installed', () => {
  it("resolves 'ringkv/client' and 'ringkv' through package.json's exports", async () => {
    const script = [
      "const client = await import('ringkv/client');",
      "const root = await import('ringkv');",
      'console.log(JSON.stringify({',
      '  client: typeof client.Client, resolvers: Object.keys(client.resolvers ?? {}).length,',
      '  node: typeof root.RingkvNode, config: typeof root.parseNodeConfig,',
      '  where: import.meta.resolve("ringkv/client"),',
      '}));',
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
    const got = JSON.parse(stdout) as Record<string, unknown>;
    expect(got).toMatchObject({ client: 'function', node: 'function', config: 'function' });
    expect(got.resolvers).toBeGreaterThan(0);
    expect(String(got.where)).toMatch(/\/dist\/client\/index\.js$/);
  });

  it("runs the `ringkv` command named by package.json's bin", async () => {
    const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const bin = resolve(ROOT, pkg.bin.ringkv ?? 'missing');
    // npm links the file itself, so it must start the way a shell runs it.
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const { stdout } = await run(process.execPath, [bin, '--help'], { cwd: ROOT });
    for (const command of ['node', 'get', 'put', 'delete', 'status']) expect(stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
  });
});
