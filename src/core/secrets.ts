// Every secret Tally uses is derived from one master secret, so an operator
// has one thing to keep safe and rotate. HKDF with distinct labels keeps the
// derived keys independent: learning one says nothing of the others.
import { createHmac, hkdfSync } from 'node:crypto';

export const MINIMUM_MASTER_KEY_BYTES = 32;

export interface DerivedSecrets {
  /** HMAC key under which opaque tokens are hashed into their token ids. */
  tokenHashKey: Uint8Array;
  /** AES-256-GCM key that seals private signing keys in the store. */
  keyEncryptionKey: Uint8Array;
  /** HMAC key that authenticates key-ring entries and token records in the store (core/integrity.ts). */
  integrityKey: Uint8Array;
  /** Seed of the Ed25519 key that signs internal JWTs (keys/internal-key.ts). */
  internalSigningSeed: Uint8Array;
  /** A public, non-reversible name for the master secret, to detect replicas that disagree. */
  fingerprint: string;
}

function derive(masterKey: Uint8Array, label: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', masterKey, new Uint8Array(0), `tally ${label} v1`, 32));
}

export function deriveSecrets(masterKey: Uint8Array): DerivedSecrets {
  if (masterKey.length < MINIMUM_MASTER_KEY_BYTES) {
    throw new RangeError(`the master key must be at least ${MINIMUM_MASTER_KEY_BYTES} bytes`);
  }
  const fingerprintKey = derive(masterKey, 'fingerprint');
  return {
    tokenHashKey: derive(masterKey, 'token-hash'),
    keyEncryptionKey: derive(masterKey, 'key-encryption'),
    integrityKey: derive(masterKey, 'store-integrity'),
    internalSigningSeed: derive(masterKey, 'internal-jwt-signing'),
    fingerprint: createHmac('sha256', fingerprintKey).update('tally master key').digest('base64url').slice(0, 22),
  };
}
