// Every Redis key the store uses. Redis Cluster routes a key by the part in
// {braces}. Token records spread over the cluster by token id; everything
// about revocation (the sequence, the marks, the event stream, the replicas'
// leases) and the key ring share the one tag {revocations}, so that taking a
// revocation number, raising the mark and announcing it to every replica is
// one atomic script on one slot. Revocations are rare next to lookups, so one
// slot carries them easily.

import { createHash } from 'node:crypto';
import type { MarkScope } from '../../core/types.js';

export const DEFAULT_KEY_PREFIX = 'tally:';

export interface KeyNames {
  /** JSON of a TokenRecord; written once, expires with the token. */
  token(tokenId: string): string;
  /** The revocation sequence, an integer counter. */
  readonly revocationSequence: string;
  /** Hash: mark field (see markField) → revocation number of its latest revocation. */
  readonly marks: string;
  /** Sorted set: mark field → time (Redis clock, ms) until which the mark must be kept. */
  readonly markExpiry: string;
  /** Stream of revocation and key-ring events, one per sequence number, trimmed to a bounded length. */
  readonly events: string;
  /**
   * Hash: replica id (or holderField of a holder outside Tally) →
   * "<last applied sequence>:<lease end, Redis clock ms>".
   */
  readonly leases: string;
  /** Hash: `version` (integer) and `keys` (JSON array of StoredKey). */
  readonly keyRing: string;
  /** The master secret's fingerprint, written once by the first replica. */
  readonly secretFingerprint: string;
  /**
   * Hash: `id` (random, made when the store is set up) and `since` (Redis
   * clock, ms). On the revocation slot, so losing that slot's data loses it
   * too: a replica whose view was built from another identity drops its view.
   */
  readonly identity: string;
}

export function createKeyNames(prefix = DEFAULT_KEY_PREFIX): KeyNames {
  const revocations = `${prefix}{revocations}:`;
  return {
    // No braces: the key hashes whole, which spreads records over the slots.
    // Ids Tally makes are base64url; any other (a caller's made-up id) is
    // digested, so braces in it can never form a slot tag, which clients and
    // Redis do not all read alike.
    token: (tokenId) => `${prefix}tok:${PLAIN_TOKEN_ID.test(tokenId) ? tokenId : `~${digest(tokenId)}`}`,
    revocationSequence: `${revocations}sequence`,
    marks: `${revocations}marks`,
    markExpiry: `${revocations}mark-expiry`,
    events: `${revocations}events`,
    leases: `${revocations}leases`,
    keyRing: `${revocations}key-ring`,
    identity: `${revocations}identity`,
    secretFingerprint: `${prefix}secret-fingerprint`,
  };
}

const PLAIN_TOKEN_ID = /^[A-Za-z0-9_-]{1,64}$/;

function digest(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}

/** The hash field of a mark. Scope names hold no colon, so the first colon splits it. */
export function markField(scope: MarkScope, value: string): string {
  return `${scope}:${value}`;
}

/** The leases field of a holder of a view outside Tally (a client), apart from the replicas' UUIDs. */
export function holderField(holderId: string): string {
  return `holder:${holderId}`;
}

const MARK_SCOPES: ReadonlySet<string> = new Set<MarkScope>(['subject', 'client', 'session', 'token', 'key']);

/** The scope and value of a mark field, as markField made it; undefined for anything else. */
export function parseMarkField(field: string): { scope: MarkScope; value: string } | undefined {
  const colon = field.indexOf(':');
  const scope = field.slice(0, colon);
  return colon > 0 && MARK_SCOPES.has(scope) ? { scope: scope as MarkScope, value: field.slice(colon + 1) } : undefined;
}

/**
 * Whether the store's floor (scripts.ts, IDENTITY: a store set up again after
 * losing its sequence) counts among these mark fields: for every scope but
 * 'key'. A key's mark revokes every JWT the key signed whatever its sequence,
 * so any mark there means revoked, and a floor would revoke every JWT. The
 * Lua of READ_MARKS makes the same test on the field's prefix.
 */
export function floorCounts(fields: Iterable<string>): boolean {
  for (const field of fields) if (!field.startsWith(KEY_MARK_PREFIX)) return true;
  return false;
}

const KEY_MARK_PREFIX = markField('key', '');
