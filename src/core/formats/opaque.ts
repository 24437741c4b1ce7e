// The opaque token format: `tly_` + 43 base62 characters carrying 256 bits
// from the CSPRNG + a 6-character base62 CRC-32 of the rest.
//
// The prefix lets secret scanners and people recognise a leaked token; the
// checksum lets Introspect refuse a mistyped or made-up string without a store
// lookup (it is not a security measure: anyone can compute a CRC). The store
// never sees the token, only its token id: an HMAC of it under a key derived
// from the master secret, so a copy of the store can neither reveal a token
// nor help forge one.
import { createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { Randomness } from '../ports.js';

export const OPAQUE_PREFIX = 'tly_';
const RANDOM_BYTES = 32;
const BODY_LENGTH = 43; // ceil(256 / log2(62))
const CHECKSUM_LENGTH = 6; // ceil(32 / log2(62))
export const OPAQUE_TOKEN_LENGTH = OPAQUE_PREFIX.length + BODY_LENGTH + CHECKSUM_LENGTH;

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SHAPE = new RegExp(`^${OPAQUE_PREFIX}[0-9A-Za-z]{${BODY_LENGTH + CHECKSUM_LENGTH}}$`);

function toBase62(value: bigint, width: number): string {
  let out = '';
  let rest = value;
  for (let i = 0; i < width; i++) {
    out = ALPHABET[Number(rest % 62n)] + out;
    rest /= 62n;
  }
  return out;
}

function checksum(text: string): string {
  return toBase62(BigInt(crc32(text)), CHECKSUM_LENGTH);
}

export function mintOpaqueToken(randomness: Randomness): string {
  const bytes = randomness.bytes(RANDOM_BYTES);
  const body = OPAQUE_PREFIX + toBase62(BigInt('0x' + Buffer.from(bytes).toString('hex')), BODY_LENGTH);
  return body + checksum(body);
}

/** Whether a string has the shape and checksum of an opaque token (says nothing of whether it exists). */
export function isWellFormedOpaqueToken(token: string): boolean {
  if (token.length !== OPAQUE_TOKEN_LENGTH || !SHAPE.test(token)) return false;
  const body = token.slice(0, OPAQUE_TOKEN_LENGTH - CHECKSUM_LENGTH);
  return checksum(body) === token.slice(OPAQUE_TOKEN_LENGTH - CHECKSUM_LENGTH);
}

/**
 * The token's non-secret handle and store key: 128 bits of its HMAC. Enough to
 * never collide, and useless for finding the token without the hash key.
 */
export function opaqueTokenId(token: string, tokenHashKey: Uint8Array): string {
  return createHmac('sha256', tokenHashKey).update(token).digest().subarray(0, 16).toString('base64url');
}
