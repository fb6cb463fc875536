/**
 * Quorum arithmetic, pure. A round counts acknowledgements and failures from a known number
 * of targets and says whether the request has succeeded, failed, or must keep waiting.
 */
import { RingkvError } from '../errors.js';

export type QuorumState = 'pending' | 'ok' | 'failed';

export class QuorumRound {
  private acks = 0;
  private fails = 0;

  /**
   * @param required acknowledgements needed (r or w)
   * @param targets how many replicas were asked (acks + fails can never exceed it)
   */
  constructor(
    readonly required: number,
    readonly targets: number,
  ) {
    if (!Number.isInteger(required) || required < 1) throw new RangeError(`required must be >= 1, got ${required}`);
    if (!Number.isInteger(targets) || targets < 0) throw new RangeError(`targets must be >= 0, got ${targets}`);
  }

  ack(): QuorumState {
    if (this.acks + this.fails < this.targets) this.acks++;
    return this.state;
  }

  fail(): QuorumState {
    if (this.acks + this.fails < this.targets) this.fails++;
    return this.state;
  }

  get answered(): number {
    return this.acks;
  }

  get outstanding(): number {
    return this.targets - this.acks - this.fails;
  }

  get state(): QuorumState {
    if (this.acks >= this.required) return 'ok';
    if (this.acks + this.outstanding < this.required) return 'failed';
    return 'pending';
  }
}

/**
 * Parse an `r`/`w` query value: an integer 1..n or `one`, `quorum`, `all` (SPEC §2).
 * `n` is the configured replication factor.
 */
export function parseQuorumParam(name: 'r' | 'w', raw: string, n: number): number {
  if (raw === 'one') return 1;
  if (raw === 'quorum') return Math.floor(n / 2) + 1;
  if (raw === 'all') return n;
  if (/^\d+$/.test(raw)) {
    const v = Number(raw);
    if (v >= 1 && v <= n) return v;
  }
  throw new RingkvError('BAD_QUERY', `${name} must be an integer 1..${n} or one, quorum, all; got "${raw}"`, {
    param: name,
  });
}

/** Cap a quorum to the replicas that exist: a cluster smaller than N keeps one replica per node. */
export function effectiveQuorum(requested: number, replicas: number): number {
  return Math.max(1, Math.min(requested, replicas));
}
