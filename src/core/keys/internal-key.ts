// The key that signs Tally's internal JWTs: the phantom tokens ext_authz
// sends upstream and the RFC 9701 signed introspection answers. It is not in
// the key ring and never in the access-token JWKS (/.well-known/jwks.json),
// so no verifier of access tokens can take an internal JWT for one, even a
// verifier that ignores "typ" and "aud"; and Tally's own Introspect does not
// know its kid. It is published apart (/.well-known/internal-jwks.json) for
// the upstreams and resource servers that verify internal JWTs.
//
// It is an Ed25519 or an ML-DSA key (TALLY_INTERNAL_JWT_ALGORITHM) whose
// 32-byte seed is derived from the master secret, so every replica holds the
// same key without storing it anywhere: the master secret already opens every
// private key of the ring, so this adds no exposure. Both algorithms take a
// 32-byte seed as their whole private key (RFC 8410 for Ed25519; FIPS 204's
// ξ, as RFC 9964 keeps it, for ML-DSA), which is why no other can be derived so.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import type { PublicJwk } from '../types.js';

/** The algorithms an internal key can have: those whose private key is a 32-byte seed. */
export const INTERNAL_SIGNING_ALGORITHMS = ['EdDSA', 'ML-DSA-44', 'ML-DSA-65', 'ML-DSA-87'] as const;
export type InternalSigningAlgorithm = (typeof INTERNAL_SIGNING_ALGORITHMS)[number];
export const DEFAULT_INTERNAL_SIGNING_ALGORITHM: InternalSigningAlgorithm = 'EdDSA';

export interface InternalKey {
  kid: string;
  algorithm: InternalSigningAlgorithm;
  privateKey: KeyObject;
  /** With "use": "sig", "alg" and "kid", as the internal JWKS publishes it. */
  publicJwk: PublicJwk;
}

/**
 * PKCS#8 wrapping of a 32-byte seed: the fixed prefix, then the seed. Ed25519
 * as RFC 8410 gives it; ML-DSA in the seed form of its private key
 * (`[0] OCTET STRING (SIZE (32))`) under the NIST algorithm identifiers.
 */
const PKCS8_SEED_PREFIX: Record<InternalSigningAlgorithm, Buffer> = {
  EdDSA: Buffer.from('302e020100300506032b657004220420', 'hex'),
  'ML-DSA-44': Buffer.from('3034020100300b060960864801650304031104228020', 'hex'),
  'ML-DSA-65': Buffer.from('3034020100300b060960864801650304031204228020', 'hex'),
  'ML-DSA-87': Buffer.from('3034020100300b060960864801650304031304228020', 'hex'),
};

export async function deriveInternalKey(seed: Uint8Array, algorithm: InternalSigningAlgorithm = DEFAULT_INTERNAL_SIGNING_ALGORITHM): Promise<InternalKey> {
  if (seed.length !== 32) throw new RangeError('the internal signing seed must be 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_SEED_PREFIX[algorithm], seed]), format: 'der', type: 'pkcs8' });
  const jwk = await exportJWK(createPublicKey(privateKey));
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, algorithm, privateKey, publicJwk: { ...jwk, kid, alg: algorithm, use: 'sig' } as PublicJwk };
}
