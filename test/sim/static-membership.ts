/**
 * A fixed membership for hand-wired anti-entropy tests: one ring, every member active at
 * `<id>:7000`, liveness as the test says.
 */
import type { MembershipView } from '../../src/membership/types.js';
import type { Ring } from '../../src/ring/types.js';

export function staticMembership(self: string, ring: () => Ring, isUp: (id: string) => boolean = () => true): MembershipView {
  return {
    self,
    ring,
    pendingRing: ring,
    member: (m) => ({ id: m, address: `${m}:7000`, zone: m, weight: 1, state: 'active', incarnation: 1, heartbeat: 1 }),
    isUp,
    statuses: () => [],
    onChange: () => () => undefined,
  };
}
