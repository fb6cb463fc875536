/**
 * Versioning: dotted version vectors, client contexts and the binary object codec.
 * Pure code; see types.ts for the model.
 */
export { canonicalActor, canonicalActorIn, clockFromEntries } from './bytes.js';
export * from './codec.js';
export * from './context.js';
export * from './dvv.js';
export { encodingOf, isVersioned, versioned } from './object.js';
export type * from './types.js';
