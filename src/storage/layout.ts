import type { Namespace } from './store.js';

/**
 * The on-disk layout every abstract-level backed Store uses: one root database, one sublevel
 * per Namespace, binary keys and values. It is the file format, so it lives in one constant
 * that the implementation and any out-of-process reader (e.g. the crash test's child, which
 * cannot import TypeScript) share; changing it breaks existing data directories.
 */
export const STORE_LAYOUT = {
  /** Sublevel name for each namespace (the key prefix is `separator + name + separator`). */
  sublevels: { obj: 'obj', hint: 'hint', meta: 'meta', xfer: 'xfer' },
  /** abstract-level's default, spelled out so that it is part of the format. */
  separator: '!',
  keyEncoding: 'view',
  valueEncoding: 'view',
} as const satisfies {
  sublevels: Record<Namespace, string>;
  separator: string;
  keyEncoding: string;
  valueEncoding: string;
};
