/**
 * The nemesis: fault schedules derived from a seed, and the driver that applies them to a
 * cluster on test hosts while the workload runs.
 *
 * Faults (after Jepsen's nemesis.clj):
 *   isolate  one node cut off from every other node
 *   halves   the nodes shuffled and split in two; every link across is cut
 *   bridge   two sides cut from each other, one node (the bridge) still sees both
 *   kill     kill -9 of one node, restarted (same data directory) after `downMs`
 *   pause    SIGSTOP of one node for longer than the failure detector takes, then SIGCONT
 *   isolate-kill  one node isolated, and meanwhile kill -9 of another (a coordinator that
 *            parked hints for the isolated one), restarted before the partition heals
 *   quiet    no fault (schedules of healthy periods, e.g. the last-writer-wins control)
 *
 * Partitions drop packets silently in both directions (netns.mjs). Clients are never cut off:
 * as in Jepsen, the partition is between the nodes. During each partition a few keys are
 * deleted through the nodes of the larger side (`deletes`), so the delete check has deletes
 * that some replica missed.
 */
import { seeded } from './workload.mjs';

export const FAULT_KINDS = ['isolate', 'halves', 'bridge', 'kill', 'pause', 'isolate-kill'];

function shuffle(random, xs) {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const between = (random, [lo, hi]) => lo + random.int(hi - lo + 1);

/** The concrete targets of a fault of `kind` over `nodes`, chosen with `random`. */
export function faultTargets(kind, nodes, random) {
  const order = shuffle(random, nodes);
  switch (kind) {
    case 'quiet':
      return {};
    case 'isolate':
    case 'kill':
    case 'pause':
      return { node: order[0] };
    case 'halves': {
      const cut = Math.floor(order.length / 2);
      return { sides: [order.slice(0, cut), order.slice(cut)] };
    }
    case 'isolate-kill':
      return { node: order[0], victim: order[1] };
    case 'bridge': {
      const [bridge, ...rest] = order;
      const cut = Math.floor(rest.length / 2);
      return { bridge, sides: [rest.slice(0, cut), rest.slice(cut)] };
    }
    default:
      throw new Error(`unknown fault kind ${kind}`);
  }
}

/**
 * A fixed sequence of fault kinds with targets from the seed:
 * `[{ kind, gapMs, durationMs, ...targets }]` (gapMs = quiet time before the fault).
 */
export function fixedSchedule({ seed, nodes, kinds = FAULT_KINDS, gapMs = 2500, durationMs = 5000, pauseMs = 5000, downMs = 3000 }) {
  const random = seeded(seed * 7919 + 1);
  return kinds.map((kind) => ({
    kind,
    gapMs,
    durationMs: kind === 'pause' ? pauseMs : kind === 'kill' ? downMs : durationMs,
    ...faultTargets(kind, nodes, random),
  }));
}

/**
 * A random schedule filling about `seconds`: faults of random kinds and targets, each lasting
 * `durationMs` (pauses at least `minPauseMs`, longer than the failure detector's timeout),
 * separated by quiet gaps.
 */
export function randomSchedule({
  seed,
  nodes,
  seconds,
  kinds = FAULT_KINDS,
  gapMs = [2000, 5000],
  durationMs = [3000, 10_000],
  minPauseMs = 4000,
}) {
  const random = seeded(seed * 7919 + 2);
  const out = [];
  let total = 0;
  while (total < seconds * 1000) {
    const kind = kinds[random.int(kinds.length)];
    const gap = between(random, gapMs);
    let dur = between(random, durationMs);
    if (kind === 'pause') dur = Math.max(dur, minPauseMs);
    if (total + gap + dur > seconds * 1000 && out.length > 0) break;
    out.push({ kind, gapMs: gap, durationMs: dur, ...faultTargets(kind, nodes, random) });
    total += gap + dur;
  }
  return out;
}

/** One line per fault, for reports. */
export function describeFault(f) {
  switch (f.kind) {
    case 'isolate':
      return `isolate ${f.node}`;
    case 'halves':
      return `halves ${f.sides.map((s) => `{${s.join(',')}}`).join(' | ')}`;
    case 'bridge':
      return `bridge ${f.bridge} between {${f.sides[0].join(',')}} | {${f.sides[1].join(',')}}`;
    case 'kill':
      return `kill -9 ${f.node}, restart after ${f.durationMs} ms`;
    case 'pause':
      return `SIGSTOP ${f.node} for ${f.durationMs} ms`;
    case 'isolate-kill':
      return `isolate ${f.node}, kill -9 ${f.victim} meanwhile`;
    case 'quiet':
      return `no fault for ${f.durationMs} ms`;
    default:
      return f.kind;
  }
}

/** The links a partition fault cuts, and the side deletes go through. */
function partitionPlan(f, all) {
  if (f.kind === 'isolate' || f.kind === 'isolate-kill') {
    const rest = all.filter((n) => n !== f.node);
    return { pairs: rest.map((n) => [f.node, n]), majority: rest };
  }
  const [a, b] = f.sides;
  const pairs = a.flatMap((x) => b.map((y) => [x, y]));
  const bigger = a.length > b.length ? a : b;
  return { pairs, majority: f.kind === 'bridge' ? [f.bridge, ...bigger] : bigger };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Nemesis {
  /**
   * @param {{ hosts: import('./netns.mjs').TestHosts, cluster: import('./ns-cluster.mjs').NsCluster,
   *   runner: import('./ns-cluster.mjs').Runner, log?: (m: string) => void, deletesPerPartition?: number }} opts
   */
  constructor({ hosts, cluster, runner, log = () => {}, deletesPerPartition = 2 }) {
    this.hosts = hosts;
    this.cluster = cluster;
    this.runner = runner;
    this.log = log;
    this.deletesPerPartition = deletesPerPartition;
    /** What was done: one record per fault, with timings and what was observed. */
    this.applied = [];
  }

  async note(kind, fields) {
    await this.runner.call('note', { kind, fields }).catch(() => {});
  }

  /** Applies every fault of `schedule` in turn; returns the fault log. */
  async run(schedule, t0 = Date.now()) {
    for (const f of schedule) {
      await sleep(f.gapMs);
      const rec = { ...f, description: describeFault(f), startMs: Date.now() - t0 };
      this.log(`nemesis: ${rec.description}`);
      await this.note('fault-start', { fault: rec.description });
      try {
        await this.apply(f, rec);
      } catch (err) {
        rec.error = String(err?.message ?? err);
        this.log(`nemesis: ${rec.description} failed: ${rec.error}`);
      }
      rec.endMs = Date.now() - t0;
      await this.note('fault-end', { fault: rec.description });
      this.applied.push(rec);
    }
    return this.applied;
  }

  async apply(f, rec) {
    const all = this.cluster.nodes.map((n) => n.id);
    if (f.kind === 'quiet') {
      await sleep(f.durationMs);
      return;
    }
    if (f.kind === 'isolate' || f.kind === 'halves' || f.kind === 'bridge' || f.kind === 'isolate-kill') {
      const { pairs, majority } = partitionPlan(f, all);
      const started = Date.now();
      await this.hosts.cut(pairs);
      rec.cut = pairs.map((p) => p.join('-'));
      rec.dropRules = Object.values(await this.hosts.rules()).reduce((s, r) => s + r.length, 0);
      // Let the partition take hold (in-flight requests time out), then delete through the
      // bigger side: some replica misses each of these deletes.
      await sleep(Math.min(1500, f.durationMs / 3));
      const via = majority.map((id) => this.cluster.node(id).url);
      const deletes = await this.runner.call('deletes', { count: this.deletesPerPartition, via }).catch((err) => ({ error: err.message }));
      rec.deletes = deletes.results?.map((d) => `${d.key}:${d.type}`) ?? deletes.error;
      if (f.kind === 'isolate-kill') {
        // Kill a node of the connected side: whatever hints it parked for the isolated node
        // must survive the crash (they are on disk) and be delivered after the heal.
        const victim = this.cluster.node(f.victim);
        await victim.kill('SIGKILL');
        await sleep(Math.max(1000, f.durationMs / 3));
        victim.start();
        await this.cluster.waitHealthy(victim, 30_000);
      }
      await sleep(Math.max(0, f.durationMs - (Date.now() - started)));
      await this.hosts.heal();
      return;
    }
    const node = this.cluster.node(f.node);
    if (f.kind === 'kill') {
      await node.kill('SIGKILL');
      rec.killedPid = node.pid;
      await sleep(f.durationMs);
      node.start();
      const t = Date.now();
      await this.cluster.waitHealthy(node, 30_000);
      rec.restartMs = Date.now() - t;
      return;
    }
    if (f.kind === 'pause') {
      node.pause();
      const started = Date.now();
      // Past the failure detector's timeout the others must have marked it down; look near
      // the end of the pause so the report says whether the pause was long enough.
      await sleep(Math.max(0, f.durationMs - 1000));
      const views = await this.cluster.views(800);
      rec.seenDownBy = Object.entries(views)
        .filter(([id, v]) => id !== f.node && v?.members?.some((m) => m.id === f.node && m.status === 'down'))
        .map(([id]) => id);
      await sleep(Math.max(0, f.durationMs - (Date.now() - started)));
      node.resume();
      return;
    }
    throw new Error(`unknown fault kind ${f.kind}`);
  }

  /** Ends every fault: flush all cuts, resume paused nodes, restart dead ones. */
  async healAll() {
    await this.hosts.heal();
    for (const n of this.cluster.nodes) {
      n.resume();
      if (!n.running) n.start();
    }
    for (const n of this.cluster.nodes) await this.cluster.waitHealthy(n, 30_000);
  }
}
