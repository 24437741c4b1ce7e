// The key that signs Tally's internal JWTs: the phantom tokens ext_authz
// sends upstream and the RFC 9701 signed introspection answers. It is not in
// the key ring and never in the access-token JWKS (/.well-known/jwks.json),
// so no verifier of access tokens can take an internal JWT for one, even a
// verifier that ignores "typ" and "aud"; and Tally's own Introspect does not
// know its kid. It is published apart (/.well-known/internal-jwks.json) for
// the upstreams and resource servers that verify internal JWTs.
//
// It is an Ed25519 key whose seed is derived from the master secret, so every
// replica holds the same key without storing it anywhere: the master secret
// already opens every private key of the ring, so this adds no exposure.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import type { PublicJwk } from '../types.js';

export interface InternalKey {
  kid: string;
  algorithm: 'EdDSA';
  privateKey: KeyObject;
  /** With "use": "sig", "alg" and "kid", as the internal JWKS publishes it. */
  publicJwk: PublicJwk;
}

/** PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410): the fixed prefix, then the 32 bytes. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export async function deriveInternalKey(seed: Uint8Array): Promise<InternalKey> {
  if (seed.length !== 32) throw new RangeError('the internal signing seed must be 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const jwk = await exportJWK(createPublicKey(privateKey));
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, algorithm: 'EdDSA', privateKey, publicJwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig' } as PublicJwk };
}
