import { ClassicLevel } from 'classic-level';
import { STORE_LAYOUT } from './layout.js';
import { SublevelStore } from './sublevel-store.js';

/** Options for {@link LevelStore}. */
export interface LevelStoreInit {
  /** Directory that holds the LevelDB files; created (with parents) if missing. */
  readonly location: string;
  /**
   * fsync every write before acknowledging it. Default {@link LEVEL_STORE_DEFAULTS}.sync
   * (false): each write is appended to LevelDB's write-ahead log with write(2) before it is
   * acknowledged, so it lands in the OS page cache and survives the *process* dying, kill -9
   * included; only an OS crash or power loss can lose the last writes. `true` closes that gap
   * at the cost of one fsync per put/del/batch (roughly 10-100x slower on ordinary disks).
   */
  readonly sync?: boolean;
  /**
   * Files LevelDB keeps open: its table cache holds maxOpenFiles - 10 tables. LevelDB mmaps
   * every open table, and each page of it that a read, a compaction or a full scan touched
   * counts in the process's resident set until the table leaves the cache. So this times
   * {@link maxFileSize} is what bounds the mapped part of RSS as the data grows. LevelDB
   * raises anything below 74 to 74 (a cache of 64 tables) without saying so; the default asks
   * for exactly that. LevelDB's own default (1000) lets RSS grow with the whole database. A
   * read whose table is not open reopens it (an open, an mmap and an index-block parse),
   * which only costs when the hot set spans more tables.
   */
  readonly maxOpenFiles?: number;
  /**
   * Size at which LevelDB ends a table it writes in a compaction. With the 64-table cache,
   * 1 MiB bounds the mapped tables at ~64 MiB, plus up to ~7 MiB more for each table flushed
   * from a memtable that is open (those are as large as {@link writeBufferSize}; a few sit in
   * level 0, or in level 1 or 2, until compacted). At LevelDB's 2 MiB a node that had scanned
   * its store (the anti-entropy tree it builds at start reads every key) held 104-110 MiB of
   * table pages after 1M keys of 256 B, and 194-233 MiB of RSS in all. LevelDB allows 1 MiB
   * at least.
   */
  readonly maxFileSize?: number;
  /** LevelDB's block cache, in bytes (blocks of tables it reads without mmap). */
  readonly cacheSize?: number;
  /**
   * LevelDB's memtable size, in bytes (up to two live at once: one filling, one flushing).
   * Larger means fewer level-0 tables and less compaction: with 4 KiB values LevelDB's
   * compaction thread used ~40 % of a node's CPU at 4 MiB (it rewrote 1.7 GB in a one-minute
   * benchmark); 8 MiB cut that enough for ~10-20 % more writes/s, at up to 8 MiB more RSS.
   */
  readonly writeBufferSize?: number;
  /**
   * Bytes of recently read objects kept in memory (see ReadCache); 0 turns it off. On a
   * loaded node a LevelDB read cost ~5-8 µs of main-thread CPU (mostly the memtable's
   * skip-list search), a hit well under 1. Writes drop their keys' entries.
   * 8 MiB holds ~13k objects of 256 B (each charged ~640 B with its overhead). It is resident
   * memory, kept small next to the 200 MB per-node budget. 4 MiB (the default until the eighth
   * benchmark round) held ~62 % of the bench's 10k keys; 8 MiB holds them all, and in 4
   * alternating rounds (`npm run bench:ab`) PUT 256 B went from 393 to 296 µs of server CPU
   * per request and GET from 200 to 170, B ahead in every round. (Then every write also read
   * its key and filled the cache; the PUT figure is from that time.)
   */
  readonly objectCacheBytes?: number;
}

export const LEVEL_STORE_DEFAULTS = {
  sync: false,
  maxOpenFiles: 74,
  maxFileSize: 1024 * 1024,
  cacheSize: 8 * 1024 * 1024,
  writeBufferSize: 8 * 1024 * 1024,
  objectCacheBytes: 8 * 1024 * 1024,
} as const;

/** Why a LevelStore could not open its location. */
export type StoreOpenFailure = 'locked' | 'not-a-directory' | 'permission-denied' | 'corrupt' | 'io';

/** Rejection of {@link LevelStore.open}: names the location and the reason. */
export class StoreOpenError extends Error {
  readonly location: string;
  readonly reason: StoreOpenFailure;

  constructor(location: string, reason: StoreOpenFailure, detail: string, cause: unknown) {
    super(`cannot open store at ${JSON.stringify(location)}: ${detail}`, { cause });
    this.name = 'StoreOpenError';
    this.location = location;
    this.reason = reason;
  }
}

/**
 * The durable Store: LevelDB (classic-level) in one directory. Only one process, and one
 * open LevelStore within it, can hold a location at a time (LevelDB's LOCK file).
 */
export class LevelStore extends SublevelStore {
  /** The directory given to the constructor. */
  readonly location: string;

  constructor(init: LevelStoreInit) {
    const { location } = init;
    if (typeof location !== 'string' || location.length === 0) {
      throw new TypeError('LevelStore: location must be a non-empty path');
    }
    const sync = init.sync ?? LEVEL_STORE_DEFAULTS.sync;
    const writeOptions: { sync: boolean } = { sync };
    super({
      db: new ClassicLevel<Uint8Array, Uint8Array>(location, {
        keyEncoding: STORE_LAYOUT.keyEncoding,
        valueEncoding: STORE_LAYOUT.valueEncoding,
        maxOpenFiles: init.maxOpenFiles ?? LEVEL_STORE_DEFAULTS.maxOpenFiles,
        maxFileSize: init.maxFileSize ?? LEVEL_STORE_DEFAULTS.maxFileSize,
        cacheSize: init.cacheSize ?? LEVEL_STORE_DEFAULTS.cacheSize,
        writeBufferSize: init.writeBufferSize ?? LEVEL_STORE_DEFAULTS.writeBufferSize,
      }),
      writeOptions,
      // LevelDB copies input into its write batch; nothing to do.
      ownInput: (value) => value,
      // classic-level returns a fresh Buffer per read; re-view it as a plain Uint8Array (no
      // copy) so callers see the same type from every Store, and Buffer's aliasing slice()
      // cannot surprise them.
      ownOutput: (value) => new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
      openFailed: (cause) => describeOpenFailure(location, cause),
      syncReads: true,
      deferCommit: true,
      directWrites: true,
      directReads: true,
      readCache: { ns: 'obj', maxBytes: init.objectCacheBytes ?? LEVEL_STORE_DEFAULTS.objectCacheBytes },
    });
    this.location = location;
  }
}

function describeOpenFailure(location: string, err: unknown): StoreOpenError {
  // abstract-level wraps the real failure: "Database failed to open", with the reason as cause.
  const cause = (err as { cause?: unknown } | null)?.cause ?? err;
  const code = (cause as { code?: unknown } | null)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  switch (code) {
    case 'LEVEL_LOCKED':
      return new StoreOpenError(
        location,
        'locked',
        `it is locked by another process or another open store (LevelDB LOCK file held): ${message}`,
        err,
      );
    case 'EEXIST':
    case 'ENOTDIR':
      return new StoreOpenError(location, 'not-a-directory', `the path (or a parent) is not a directory: ${message}`, err);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new StoreOpenError(location, 'permission-denied', `permission denied: ${message}`, err);
    case 'LEVEL_CORRUPTION':
      return new StoreOpenError(location, 'corrupt', `the database is corrupt: ${message}`, err);
    default:
      return new StoreOpenError(location, 'io', message, err);
  }
}
