/**
 * The workload process: runs inside the client namespace (`ip netns exec rkv-<pid>-c node
 * client-runner.mjs <historyPath> <seed>`), the only place that can reach the nodes. The
 * orchestrator (run.mjs, in the machine's own namespace; `... <historyPath> <seed> <distDir>`) drives it with one JSON request per
 * line on stdin and reads one JSON reply per line on stdout:
 *
 *   { id, cmd: 'http', method, url, timeoutMs }    -> { id, ok, status, body }  (probes)
 *   { id, cmd: 'setup', nodes, config }            -> { id, ok }                 (create del keys)
 *   { id, cmd: 'start' }                           -> { id, ok }                 (workers run)
 *   { id, cmd: 'deletes', count, via }             -> { id, ok, results }
 *   { id, cmd: 'status' }                          -> { id, ok, ops }
 *   { id, cmd: 'stop' }                            -> { id, ok }                 (in-flight ops done)
 *   { id, cmd: 'final', deadlineMs }               -> { id, ok, converged, rounds, ... }
 *   { id, cmd: 'reap-reads' }                      -> { id, ok, present, tombstone, reaped }
 *   { id, cmd: 'note', kind, fields }              -> { id, ok }                 (fault markers)
 *   { id, cmd: 'exit' }                            -> { id, ok }, then exits
 *
 * The history goes to <historyPath> as JSON lines as operations happen. Logs go to stderr.
 */
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { HistoryWriter } from './history.mjs';
import { Workloads } from './workload.mjs';

const [historyPath, seedArg, distDir] = process.argv.slice(2);
if (!historyPath) {
  console.error('usage: client-runner.mjs <historyPath> <seed> [<distDir>]');
  process.exit(2);
}
// The SDK of the same build the nodes run (run.mjs snapshots dist/ so rebuilds mid-run do not mix versions).
const sdkUrl = distDir ? pathToFileURL(join(distDir, 'client', 'index.js')) : new URL('../../dist/client/index.js', import.meta.url);
const sdk = await import(sdkUrl.href);
const history = new HistoryWriter(historyPath);
const log = (m) => process.stderr.write(`${new Date().toISOString()} runner: ${m}\n`);
let workloads;

async function probe({ method = 'GET', url, timeoutMs = 2000, body }) {
  try {
    const res = await fetch(url, { method, body, signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    return { status: 0, error: String(err?.cause?.code ?? err?.name ?? err) };
  }
}

async function handle(req) {
  switch (req.cmd) {
    case 'http':
      return probe(req);
    case 'setup':
      workloads = new Workloads({ sdk, history, nodes: req.nodes, seed: Number(seedArg ?? 1), config: req.config, log });
      await workloads.setup();
      return {};
    case 'start':
      workloads.start();
      return {};
    case 'deletes':
      return { results: await workloads.deletes(req) };
    case 'status':
      return { ops: history.nextOp, open: history.open.size };
    case 'stop':
      await workloads.stop();
      return {};
    case 'final':
      return workloads.final(req);
    case 'reap-reads':
      return workloads.reapReads(req);
    case 'note':
      history.note(req.kind, req.fields ?? {});
      return {};
    case 'exit':
      await workloads?.close();
      history.close();
      setImmediate(() => process.exit(0));
      return {};
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    log(`bad request line: ${line.slice(0, 200)}`);
    return;
  }
  handle(req).then(
    (res) => process.stdout.write(`${JSON.stringify({ id: req.id, ok: true, ...res })}\n`),
    (err) => {
      log(`${req.cmd} failed: ${err?.stack ?? err}`);
      process.stdout.write(`${JSON.stringify({ id: req.id, ok: false, error: String(err?.message ?? err) })}\n`);
    },
  );
});
// The orchestrator went away: stop cleanly, keeping the history written so far.
rl.on('close', () => {
  history.close();
  process.exit(0);
});
