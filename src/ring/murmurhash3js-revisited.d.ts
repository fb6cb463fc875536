/**
 * Types for the untyped `murmurhash3js-revisited` package (CommonJS). Only what ringkv uses is
 * declared. The hash functions take bytes, not strings: callers encode keys as UTF-8 first.
 */
declare module 'murmurhash3js-revisited' {
  interface MurmurHash3 {
    readonly x86: {
      /**
       * MurmurHash3 x86 32-bit of `bytes` as an unsigned 32-bit integer; `undefined` if the input
       * is not an array of bytes (when `inputValidation` is on, the default).
       */
      hash32(bytes: ArrayLike<number>, seed?: number): number | undefined;
    };
  }
  const murmurHash3: MurmurHash3;
  export default murmurHash3;
}
