// The hash-slot function ioredis itself uses; the package ships no types.
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0 to 16383) of a key, honouring a `{hash tag}`. */
  function calculateSlot(key: string | Buffer): number
  export = calculateSlot
}
