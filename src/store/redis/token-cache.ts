// A bounded cache of token records. Records never change once written
// (revocation is a mark, not an edit), so a cached record is never stale; it
// only has to leave when the token expires or room is needed. Map keeps
// insertion order, so re-inserting on a hit makes the first key the least
// recently used.
import type { Clock } from '../../core/ports.js';
import type { TokenRecord } from '../../core/types.js';
import { frozenCopy } from '../frozen-copy.js';

export interface TokenCache {
  get(tokenId: string): TokenRecord | undefined;
  set(record: TokenRecord): void;
  /** Forgets every record: the store they came from lost its data. */
  clear(): void;
  readonly size: number;
}

export function createTokenCache(capacity: number, clock: Clock): TokenCache {
  const records = new Map<string, TokenRecord>();
  return {
    get(tokenId) {
      const record = records.get(tokenId);
      if (record === undefined) return undefined;
      records.delete(tokenId);
      if (clock.now() > record.expiresAt) return undefined;
      records.set(tokenId, record);
      // Frozen when cached (store/frozen-copy.ts), so every reader shares it.
      return record;
    },
    set(record) {
      records.delete(record.tokenId);
      if (clock.now() > record.expiresAt) return;
      records.set(record.tokenId, frozenCopy(record));
      if (records.size > capacity) records.delete(records.keys().next().value!);
    },
    clear() {
      records.clear();
    },
    get size() {
      return records.size;
    },
  };
}
