// The JWT format: RFC 9068 access tokens, signed by the active key with its
// kid in the header. Verification here answers only "did we sign this, for
// this issuer, and is it in its time window?"; whether it is still active is
// the token service's question (the store holds a record for every jti).
import { SignJWT, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { tokenClaims, type TokenFacts } from '../claims.js';
import type { JsonObject } from '../types.js';
import type { SigningKey, VerificationKey } from '../keys/key-ring.js';

export const JWT_TYPE = 'at+jwt';

/** Three base64url segments: cheap to test before any parsing. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function looksLikeJwt(token: string): boolean {
  return JWT_SHAPE.test(token);
}

export interface AccessTokenClaims extends TokenFacts {
  extra: JsonObject;
}

export async function signAccessToken(claims: AccessTokenClaims, key: SigningKey): Promise<string> {
  // The registered claims come from the one mapping every path shares (core/claims.ts).
  return new SignJWT(tokenClaims(claims, claims.extra))
    .setProtectedHeader({ alg: key.algorithm, typ: JWT_TYPE, kid: key.kid })
    .sign(key.privateKey);
}

export type JwtCheck =
  | { ok: true; tokenId: string; subject: string }
  | { ok: false; reason: 'malformed' | 'unknown_key' | 'bad_signature' | 'expired' | 'not_yet_valid' };

/** The kid a JWT names, or undefined when the header is unreadable or names none. */
export function jwtKeyId(token: string): string | undefined {
  try {
    const header = decodeProtectedHeader(token);
    return typeof header.kid === 'string' ? header.kid : undefined;
  } catch {
    return undefined;
  }
}

export interface VerifyOptions {
  issuer: string;
  now: number;
  /** How far "nbf" may lie ahead and "exp" behind now (TALLY_CLOCK_SKEW): clocks that stamped and judge the times may disagree by this much. */
  clockToleranceMs: number;
}

export async function verifyAccessToken(token: string, key: VerificationKey | undefined, options: VerifyOptions): Promise<JwtCheck> {
  if (key === undefined) return { ok: false, reason: 'unknown_key' };
  try {
    const { payload } = await jwtVerify(token, key.publicKey, {
      // Only the algorithm the key was made for: no "none", no HS256 with a public key.
      algorithms: [key.algorithm],
      issuer: options.issuer,
      typ: JWT_TYPE,
      requiredClaims: ['sub', 'jti', 'exp', 'iat'],
      currentDate: new Date(options.now),
      clockTolerance: Math.floor(options.clockToleranceMs / 1000),
    });
    if (typeof payload.jti !== 'string' || typeof payload.sub !== 'string') return { ok: false, reason: 'malformed' };
    return { ok: true, tokenId: payload.jti, subject: payload.sub };
  } catch (error) {
    if (error instanceof errors.JWTExpired) return { ok: false, reason: 'expired' };
    if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'nbf') return { ok: false, reason: 'not_yet_valid' };
    if (error instanceof errors.JWSSignatureVerificationFailed) return { ok: false, reason: 'bad_signature' };
    return { ok: false, reason: 'malformed' };
  }
}
