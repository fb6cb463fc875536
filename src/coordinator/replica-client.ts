/**
 * The coordinator's calls to other replicas, behind one seam: write a version to a replica,
 * read a key from a replica, and the matching server-side handlers. Batching, encodings and
 * per-peer scheduling live here so the coordinator only decides who to ask and counts answers.
 */
import { AAE_ROUTES, encodeObjectItems } from '../antientropy/messages.js';
import type { MembershipView } from '../membership/types.js';
import type { LocalReplica } from '../replica/local-replica.js';
import { settleAll } from '../settle.js';
import { isUnknownRouteError } from '../transport/batching.js';
import type { InternalHandler, PeerAddress, Transport } from '../transport/transport.js';
import { encodeObject, type VersionedObject } from '../version/index.js';
import {
  decodeReadReply,
  decodeReplicaAnswer,
  decodeReplicaWrite,
  decodeString,
  decodeWriteBatch,
  encodeReplicaWrite,
  encodeStampReadReply,
  encodeStoredReadReply,
  encodeString,
  type ReplicaAnswer,
  ROUTES,
} from './messages.js';

export interface ReplicaClientComponents {
  readonly transport: Transport;
  readonly replica: LocalReplica;
  readonly membership: MembershipView;
}

export interface ReplicaClientInit {
  readonly hintedHandoff: boolean;
}

/** The reply to a replica write (empty; nothing reads or writes into it). */
const EMPTY_REPLY = new Uint8Array(0);
const NO_HINTS: readonly string[] = Object.freeze([]);

/** Items of one replica-write-batch merged at a time (see onReplicaWriteBatch). */
const BATCH_APPLY_CHUNK = 256;

export class ReplicaClient {
  /**
   * The last replica-write message without hints, by the object bytes it carries: the
   * coordinator writes one version to every replica back to back, so the message for the
   * second peer is the first one's (a 4 KiB value is then copied once, not once per peer).
   */
  private lastMessage: { encoded: Uint8Array; key: string; message: Uint8Array } | undefined;

  constructor(
    private readonly c: ReplicaClientComponents,
    private readonly init: ReplicaClientInit,
  ) {}

  /**
   * Merge `object` into the replica at `address`; `hintsFor` names owners the peer holds the
   * copy for (it parks a hint for each). `encoded` is encodeObject(object) when the caller
   * already has it (one encoding for several replicas).
   */
  write(
    address: PeerAddress,
    key: string,
    object: VersionedObject,
    hintsFor: readonly string[],
    timeoutMs: number,
    encoded?: Uint8Array,
  ): Promise<unknown> {
    // The reply is empty; not awaited here, so no async frame per replica write. Any throw
    // becomes the returned promise's rejection, as from an async function: callers count it
    // as that replica's failure.
    try {
      let message: Uint8Array;
      const last = this.lastMessage;
      if (encoded !== undefined && hintsFor.length === 0 && last?.encoded === encoded && last.key === key) {
        message = last.message;
      } else {
        message = encodeReplicaWrite({ key, hintsFor, object }, encoded);
        this.lastMessage = encoded !== undefined && hintsFor.length === 0 ? { encoded, key, message } : undefined;
      }
      return this.c.transport.send(address, ROUTES.replicaWrite, message, { timeoutMs, idempotent: true });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Merge `object` into the replica's copy of `key` after reading that copy from its store, not
   * trusting its version cache: for a replica whose stored copy was found corrupt, which the
   * merge then replaces (a plain replica write would find the version it last wrote in its
   * cache and change nothing). Anti-entropy's repair message, which every node serves.
   */
  async repairVerified(address: PeerAddress, partition: number, key: string, object: VersionedObject, timeoutMs: number): Promise<void> {
    const body = encodeObjectItems([{ partition, key, object: encodeObject(object) }]);
    await this.c.transport.send(address, AAE_ROUTES.repair, body, { timeoutMs, idempotent: true });
  }

  /** The replica's stored version of `key` (undefined if it has none). */
  async read(address: PeerAddress, key: string, timeoutMs: number): Promise<VersionedObject | undefined> {
    const reply = await this.c.transport.send(address, ROUTES.replicaRead, encodeString(key), { timeoutMs, idempotent: true });
    return decodeReadReply(reply);
  }

  /**
   * The replica's version of `key`, and its whole object only if that costs the replica a
   * store read anyway: a replica that knows the key's version from its version cache sends
   * just that. For a coordinator that has read its own copy: when the versions agree (the
   * usual case) it answers from its own copy, and the peer neither read its store nor sent
   * the value. A peer from before this route (a rolling upgrade) is read whole instead.
   * `expected()` is the caller's own copy once it has it, asked when the reply arrives: a
   * reply of exactly that version is not decoded (see decodeReplicaAnswer).
   */
  async readVersion(
    address: PeerAddress,
    key: string,
    timeoutMs: number,
    expected?: () => VersionedObject | undefined,
  ): Promise<ReplicaAnswer> {
    try {
      const reply = await this.c.transport.send(address, ROUTES.replicaReadVersion, encodeString(key), { timeoutMs, idempotent: true });
      return decodeReplicaAnswer(reply, expected?.());
    } catch (err) {
      if (!isUnknownRouteError(err)) throw err;
      return { object: await this.read(address, key, timeoutMs) };
    }
  }

  /** Server side of the routes above. */
  handlers(): Map<string, InternalHandler> {
    return new Map<string, InternalHandler>([
      [ROUTES.replicaWrite, (b) => this.onReplicaWrite(b)],
      [ROUTES.replicaWriteBatch, (b) => this.onReplicaWriteBatch(b)],
      [ROUTES.replicaRead, (b) => this.onReplicaRead(b)],
      [ROUTES.replicaReadVersion, (b) => this.onReplicaReadVersion(b)],
    ]);
  }

  private async onReplicaWrite(body: Uint8Array): Promise<Uint8Array> {
    const m = decodeReplicaWrite(body);
    const partition = this.c.membership.ring().partitionOf(m.key);
    const hints =
      this.init.hintedHandoff && m.hintsFor.length > 0 ? m.hintsFor.filter((h) => h !== this.c.membership.self) : NO_HINTS;
    await this.c.replica.apply(partition, m.key, m.object, hints);
    return EMPTY_REPLY;
  }

  /**
   * Items are merged concurrently: the replica's per-key lock still orders two items for one
   * key (merging is commutative anyway), and items for different keys share the store's group
   * commit, so a batch of hints or transferred keys costs one database write, not one each
   * in turn. The reply waits for every item; any failure fails the batch (the sender retries
   * it whole: merges are idempotent).
   */
  private async onReplicaWriteBatch(body: Uint8Array): Promise<Uint8Array> {
    const ring = this.c.membership.ring();
    const items = decodeWriteBatch(body);
    // In chunks: a sender may pack more than our own senders do (they send up to 256), and
    // one huge group commit would hold up, and on failure fail, unrelated writes that join it.
    for (let i = 0; i < items.length; i += BATCH_APPLY_CHUNK) {
      const chunk = items.slice(i, i + BATCH_APPLY_CHUNK);
      await settleAll(chunk.map((item) => this.c.replica.apply(ring.partitionOf(item.key), item.key, item.object)));
    }
    return new Uint8Array(0);
  }

  private async onReplicaRead(body: Uint8Array): Promise<Uint8Array> {
    const key = decodeString(body);
    const partition = this.c.membership.ring().partitionOf(key);
    return encodeStoredReadReply(await this.c.replica.readStored(partition, key));
  }

  private async onReplicaReadVersion(body: Uint8Array): Promise<Uint8Array> {
    const key = decodeString(body);
    const partition = this.c.membership.ring().partitionOf(key);
    const stamp = this.c.replica.cachedVersion(partition, key);
    if (stamp !== undefined) return encodeStampReadReply(stamp);
    return encodeStoredReadReply(await this.c.replica.readStored(partition, key));
  }
}
