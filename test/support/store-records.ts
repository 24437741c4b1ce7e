// Records as a store keeps them, for tests that write to a store (or to Redis)
// themselves rather than through the token service: one token record and one
// key-ring entry, each with every field filled, that a test overrides where it
// cares.

import type { StoredKey, TokenRecord } from '../../src/core/types.js';

export const RECORD_LIFETIME_MS = 60 * 60 * 1000;

/**
 * A token record issued at `now` and living RECORD_LIFETIME_MS. Every field
 * is set, with claims that nest and hold unicode, so a store that gives it
 * back equal has kept all of it.
 */
export function tokenRecord(overrides: Partial<TokenRecord> = {}, now = Date.now()): TokenRecord {
  return {
    tokenId: 'token-1',
    format: 'opaque',
    subject: 'alice',
    clientId: 'orders',
    audience: ['orders', 'billing'],
    scopes: ['read', 'write'],
    sessionId: 'session-9',
    claims: { tenant: 'acme', nested: { list: [1, 'two', null, true] }, 'ünïcode': '😀' },
    issuedAt: now,
    expiresAt: now + RECORD_LIFETIME_MS,
    sequence: 7,
    ...overrides,
  };
}

/** An active key-ring entry named `kid`; its key material is a placeholder no test verifies with. */
export function storedKey(kid: string, overrides: Partial<StoredKey> = {}): StoredKey {
  return {
    kid,
    algorithm: 'EdDSA',
    state: 'active',
    createdAt: 1_700_000_000_000,
    publicJwk: { kty: 'OKP', crv: 'Ed25519', x: `x-${kid}`, kid },
    sealedPrivateKey: `sealed-${kid}`,
    ...overrides,
  };
}
