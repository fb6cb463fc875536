/**
 * How a ringkv node runs in production (scripts/runtime.json; the Dockerfile sets the same):
 * its Node flags and environment, as far as this machine allows. Shared by the bench scripts
 * and the dev cluster (`npm start`), so that what they start runs like the image does.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** True if the dynamic linker preloads `library` (LD_PRELOAD's rules) into a node process. */
export function preloads(library) {
  const probe = 'process.stdout.write(String(require("fs").readFileSync("/proc/self/maps","utf8").includes(process.argv[1])))';
  const r = spawnSync(process.execPath, ['-e', probe, library.split('/').pop()], {
    env: { ...process.env, LD_PRELOAD: library },
    encoding: 'utf8',
  });
  return r.status === 0 && r.stdout === 'true';
}

/**
 * `{ nodeFlags, env, allocator }` from `root`'s scripts/runtime.json. If the preloaded
 * allocator (LD_PRELOAD) is missing and `install` is given, `install(packages)` is asked to
 * install runtime.json's packages (it throws if it cannot); if the allocator still cannot be
 * preloaded, nodes run without it, `log` says so once, and `allocator` names what they run on.
 */
export function runtimeSettings(root, { log = (m) => process.stderr.write(`${m}\n`), install } = {}) {
  const runtime = JSON.parse(readFileSync(join(root, 'scripts', 'runtime.json'), 'utf8'));
  const env = { ...runtime.env };
  const library = env.LD_PRELOAD;
  if (library === undefined) return { nodeFlags: runtime.nodeFlags, env, allocator: 'glibc malloc' };
  let found = preloads(library);
  const packages = runtime.packages ?? [];
  if (!found && install !== undefined && packages.length > 0) {
    try {
      install(packages);
      found = preloads(library);
    } catch (err) {
      log(`could not install ${packages.join(' ')}: ${err?.message ?? err}`);
    }
  }
  if (found) return { nodeFlags: runtime.nodeFlags, env, allocator: library };
  delete env.LD_PRELOAD;
  log(
    `warning: ${library} cannot be preloaded (Debian package ${packages.join(' ') || '?'}); nodes run on glibc malloc, unlike production, and use more memory`,
  );
  return { nodeFlags: runtime.nodeFlags, env, allocator: `glibc malloc (${library} missing)` };
}
