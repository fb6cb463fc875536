/**
 * The receiving side of a hint hand-over: a leaving node gives another member a hint it holds
 * for an owner it cannot deliver to, with the copy the hint points at (see
 * HintDelivery.relocate). Unlike a coordinator's replica write with `hintsFor`, which a node
 * with hinted handoff off merges without parking the hint, an adopted hint is always parked:
 * it is not a new sloppy-quorum decision but a hint that already stands for an acknowledged
 * copy, and the sender deletes its own as soon as this route answers.
 */
import { decodeReplicaWrite } from '../coordinator/messages.js';
import { RingkvError } from '../errors.js';
import type { MembershipView } from '../membership/types.js';
import type { LocalReplica } from '../replica/local-replica.js';
import type { InternalHandler } from '../transport/transport.js';

export const HINT_ROUTES = {
  /** Body: a replica write (encodeReplicaWrite) whose `hintsFor` names the owners. */
  adopt: 'hint-adopt',
} as const;

/** The answer of an adopt: the copy is stored and a hint parked for each owner. */
const ADOPTED = Uint8Array.of(1);

/**
 * Serves HINT_ROUTES.adopt. A member that is leaving (or gone) refuses: it would have to hand
 * the hint on again before it may go, and two leaving members could pass hints back and forth
 * while each still saw the other as active. So does a joining one (a sender with a stale view
 * may take it for active): a leave makes a joining member go at once, hints and all. An owner
 * that is this node itself gets the copy, which is the delivery the hint waited for.
 */
export function adoptHintHandler(c: { replica: LocalReplica; membership: MembershipView }): InternalHandler {
  return async (body) => {
    const m = decodeReplicaWrite(body);
    const self = c.membership.member(c.membership.self)?.state;
    if (self !== 'active') throw new RingkvError('UNAVAILABLE', `a ${self ?? 'unknown'} member adopts no hint`);
    const owners = m.hintsFor.filter((h) => h !== c.membership.self);
    await c.replica.apply(c.membership.ring().partitionOf(m.key), m.key, m.object, owners);
    return ADOPTED;
  };
}
