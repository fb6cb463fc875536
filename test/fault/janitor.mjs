/**
 * Detached watchdog of one fault-test run: `node janitor.mjs <ownerPid> <nsPrefix>`.
 *
 * If the owning process dies without cleaning up (SIGKILL, OOM, a crashed test worker), this
 * removes its namespaces, which also ends the node processes inside them. The owner sends it
 * SIGTERM after its own cleanup, and then it simply exits.
 */
import { removeNamespacesSync } from './netns.mjs';

const owner = Number(process.argv[2]);
const prefix = process.argv[3];
if (!Number.isInteger(owner) || owner <= 0 || !prefix || !/^rkv-\d+-$/.test(prefix)) {
  console.error('usage: janitor.mjs <ownerPid> rkv-<pid>-');
  process.exit(2);
}

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => {
  // Ctrl-C reaches the whole foreground group; the owner cleans up on SIGINT itself, and if it
  // does not, the liveness poll below still notices it is gone.
});

const timer = setInterval(() => {
  try {
    process.kill(owner, 0);
  } catch {
    clearInterval(timer);
    removeNamespacesSync(prefix);
    process.exit(0);
  }
}, 300);
