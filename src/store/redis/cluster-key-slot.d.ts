// The package ships no types; this is its one export.
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0-16383) of a key. */
  export default function calculateSlot(key: string | Buffer): number;
}
