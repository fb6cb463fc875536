/** Types for bench-replicated.mjs (the benchmark's replicated baseline), for the tests. */
export interface ReplicatedServer {
  readonly url: string;
  close(): Promise<void>;
}

export function startReplicated(opts: {
  host?: string;
  port?: number;
  data: string;
  /** The other members' `host:port`, in the order reads prefer them. */
  peers: readonly string[];
  secret: string;
}): Promise<ReplicatedServer>;
