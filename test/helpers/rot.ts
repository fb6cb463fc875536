import type { Store } from '../../src/storage/index.js';

/**
 * Flip one bit of a stored object (`objectKey` bytes), as a rotting disk would: the copy then
 * fails its checksum. Under every cache of the node, which a real disk's rot is too.
 */
export async function rotStoredObject(store: Store, objectKey: Uint8Array): Promise<void> {
  const bytes = await store.get('obj', objectKey);
  if (bytes === undefined) throw new Error('rotStoredObject: no such object');
  bytes[3] = (bytes[3] as number) ^ 0x01;
  await store.put('obj', objectKey, bytes);
}
