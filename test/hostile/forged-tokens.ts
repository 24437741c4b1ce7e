// Tokens an attacker could make: opaque tokens with valid checksums that
// Tally never issued, and JWTs that bend every rule a verifier must keep.
// Each must introspect inactive; a real JWT is the raw material for the
// tampered ones.
import { createPublicKey, randomBytes } from 'node:crypto';
import { generateKeyPair, SignJWT, type JWK } from 'jose';
import { mintOpaqueToken } from '../../src/core/formats/opaque.js';

const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>;

export interface ForgeryInput {
  /** A JWT Tally issued (active). */
  realJwt: string;
  /** The public JWK of the key that signed it, as ListKeys gives it. */
  publicJwk: JWK;
  issuer: string;
}

export async function forgeTokens(input: ForgeryInput): Promise<Array<{ name: string; token: string }>> {
  const [header, payload, signature] = input.realJwt.split('.') as [string, string, string];
  const realHeader = decode(header);
  const realPayload = decode(payload);
  const now = Math.floor(Date.now() / 1000);
  const own = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const signOwn = (claims: Record<string, unknown>, protectedHeader: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', ...protectedHeader }).sign(own.privateKey);
  const publicPem = createPublicKey({ key: input.publicJwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  const hmacWith = async (secret: string) =>
    new SignJWT(realPayload).setProtectedHeader({ ...realHeader, alg: 'HS256' }).sign(new TextEncoder().encode(secret));

  const opaque = Array.from({ length: 20 }, (_, index) => ({
    name: `opaque token with a valid checksum, never issued #${index}`,
    token: mintOpaqueToken({ bytes: (length: number) => new Uint8Array(randomBytes(length)) }),
  }));
  return [
    ...opaque,
    { name: 'JWT alg none', token: `${encode({ ...realHeader, alg: 'none' })}.${payload}.` },
    { name: 'JWT alg none, signature kept', token: `${encode({ ...realHeader, alg: 'none' })}.${payload}.${signature}` },
    { name: 'JWT HS256 signed with the public key (PEM)', token: await hmacWith(publicPem) },
    { name: 'JWT HS256 signed with the public key (JWK JSON)', token: await hmacWith(JSON.stringify(input.publicJwk)) },
    { name: 'JWT with an unknown kid', token: await signOwn(realPayload, { typ: 'at+jwt', kid: 'kid-nobody-has' }) },
    { name: 'JWT signed by another key under the real kid', token: await signOwn(realPayload, { typ: 'at+jwt', kid: realHeader.kid }) },
    { name: 'JWT with a tampered payload (subject)', token: `${header}.${encode({ ...realPayload, sub: 'mallory' })}.${signature}` },
    { name: 'JWT with a tampered payload (scope)', token: `${header}.${encode({ ...realPayload, scope: 'admin' })}.${signature}` },
    { name: 'JWT with a tampered header (typ)', token: `${encode({ ...realHeader, typ: 'JWT' })}.${payload}.${signature}` },
    { name: 'JWT with a tampered header (extra field)', token: `${encode({ ...realHeader, jku: 'http://127.0.0.1:1/keys' })}.${payload}.${signature}` },
    { name: 'JWT with a truncated signature', token: `${header}.${payload}.${signature.slice(0, -4)}` },
    { name: 'JWT expired (forged under the real kid)', token: await signOwn({ ...realPayload, exp: now - 3600, iat: now - 7200 }, { typ: 'at+jwt', kid: realHeader.kid }) },
    { name: 'JWT with a future nbf (forged under the real kid)', token: await signOwn({ ...realPayload, nbf: now + 3600 }, { typ: 'at+jwt', kid: realHeader.kid }) },
    { name: 'JWT with a wrong issuer (forged under the real kid)', token: await signOwn({ ...realPayload, iss: `${input.issuer}.evil` }, { typ: 'at+jwt', kid: realHeader.kid }) },
    { name: 'JWT with the real signature on a wrong issuer', token: `${header}.${encode({ ...realPayload, iss: 'https://evil.test' })}.${signature}` },
    { name: 'JWT with a far exp on the real signature', token: `${header}.${encode({ ...realPayload, exp: now + 10 ** 8 })}.${signature}` },
    { name: 'JWT with four parts', token: `${input.realJwt}.${signature}` },
    { name: 'JWT with a JSON array payload', token: `${header}.${Buffer.from('[]').toString('base64url')}.${signature}` },
  ];
}
