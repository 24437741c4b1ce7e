// Every entry of the key ring carries a MAC over all its fields (kid,
// algorithm, state, times, public key, sealed private key, and whatever an
// entry may gain later) under the master-derived integrity key. An entry
// that fails it is not Tally's: it is ignored (never verifies, never signs,
// never reaches the JWKS), reported, and dropped at the ring's next write.
// So a writer to Redis without the master key cannot plant a key, revive a
// retired one with a new retirement time, or swap a key's public part.
import { hasValidMac, macOf } from '../integrity.js';
import type { StoredKey } from '../types.js';

const RING_ENTRY = 'key-ring-entry';

export function withRingMac(entry: StoredKey, macKey: Uint8Array): StoredKey {
  return { ...entry, mac: macOf(macKey, RING_ENTRY, entry) };
}

/** The entries that carry a good MAC; onRejected hears of each other one (by kid when it has a readable one). */
export function authenticRingEntries(entries: readonly unknown[], macKey: Uint8Array, onRejected: (kid: string) => void): StoredKey[] {
  const authentic: StoredKey[] = [];
  for (const entry of Array.isArray(entries) ? entries : []) {
    if (hasValidMac(macKey, RING_ENTRY, entry)) authentic.push(entry as StoredKey);
    else {
      const kid = (entry as { kid?: unknown } | null)?.kid;
      onRejected(typeof kid === 'string' ? kid.slice(0, 64) : '(none)');
    }
  }
  return authentic;
}
