// Every Redis key the store uses. Redis Cluster routes a key by the part in
// {braces} when there is one, and every command and script here touches a
// single key, so no call ever needs two hash slots.

import { createHash } from 'node:crypto';
import type { RevocationScope } from '../../core/types.js';

export const DEFAULT_KEY_PREFIX = 'tally:';

export interface KeyNames {
  /** JSON of a TokenRecord; expires with the token. */
  token(tokenId: string): string;
  /** The scope's revocation mark (an integer); kept for keepForMs. */
  mark(scope: RevocationScope, value: string): string;
  /** The global revocation sequence, an INCR counter. */
  readonly revocationSequence: string;
  /** A hash: `version` (integer) and `keys` (JSON array of StoredKey). */
  readonly keyRing: string;
  /** The master secret's fingerprint, written once by the first replica. */
  readonly secretFingerprint: string;
}

export function createKeyNames(prefix = DEFAULT_KEY_PREFIX): KeyNames {
  return {
    token: (tokenId) => `${prefix}tok:{${tokenId}}`,
    // Subjects, clients and sessions are caller-chosen strings that may hold
    // braces, colons or any bytes; a digest keeps the slot tag whole and the
    // key length bounded.
    mark: (scope, value) => `${prefix}mark:${scope}:{${digest(value)}}`,
    revocationSequence: `${prefix}revocation-seq`,
    keyRing: `${prefix}key-ring`,
    secretFingerprint: `${prefix}secret-fingerprint`,
  };
}

function digest(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}
