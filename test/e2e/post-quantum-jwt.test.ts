// ML-DSA JWTs through the real process: verified by @noble/post-quantum (not
// OpenSSL) against the key the JWKS publishes, an altered signature refused,
// and the largest JWT a default Issue can make (ML-DSA-87, every field at its
// limit) carried on every path a token travels: gRPC, Connect, RFC 7662 and
// RFC 9701 answers, Revoke by value, and Envoy ext_authz with its phantom token.
// The internal JWTs (the RFC 9701 answer and the phantom token) are signed by
// the internal key, here ML-DSA-65 (TALLY_INTERNAL_JWT_ALGORITHM), and verified
// by @noble/post-quantum against the internal JWKS.
import { ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { decodeProtectedHeader } from 'jose';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authorization } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { LIMITS } from '../../src/core/validation.js';
import { writeCallersFile } from '../support/keyed-callers.js';
import { createGrpcTestClient, grpcStatusOf, type GrpcTestClient } from '../support/grpc-client.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const { issue, introspect, revoke, rotateKeys } = TokenService.method;

const INTERNAL_JWKS = '/.well-known/internal-jwks.json';

/** Envoy's default limit on a request's headers (max_request_headers_kb: 60). */
const ENVOY_DEFAULT_HEADERS_BYTES = 60 * 1024;

interface Jwk {
  kid: string;
  kty: string;
  alg: string;
  pub?: string;
  priv?: string;
}

async function jwks(tally: TallyProcess, path = '/.well-known/jwks.json'): Promise<Jwk[]> {
  return ((await (await fetch(`${tally.httpUrl}${path}`)).json()) as { keys: Jwk[] }).keys;
}

/** @noble/post-quantum's verdict on a compact JWS, with the public key from the JWKS at path. */
async function nobleVerifies(tally: TallyProcess, jwt: string, path?: string): Promise<boolean> {
  const { kid, alg } = decodeProtectedHeader(jwt);
  const key = (await jwks(tally, path)).find((entry) => entry.kid === kid);
  if (key?.pub === undefined) throw new Error(`the JWKS has no AKP key ${kid}`);
  const dsa = alg === 'ML-DSA-87' ? ml_dsa87 : ml_dsa65;
  const [header, payload, signature] = jwt.split('.');
  return dsa.verify(Buffer.from(signature!, 'base64url'), Buffer.from(`${header}.${payload}`, 'ascii'), Buffer.from(key.pub, 'base64url'));
}

function alterSignature(jwt: string): string {
  const [header, payload, signature] = jwt.split('.');
  const bytes = Buffer.from(signature!, 'base64url');
  bytes[bytes.length >> 1]! ^= 0x80;
  return `${header}.${payload}.${bytes.toString('base64url')}`;
}

const callers = writeCallersFile([
  { name: 'ops', permissions: ['issue', 'introspect', 'revoke', 'keys'] },
  { name: 'envoy', permissions: ['ext_authz'] },
]);

describe('ML-DSA JWTs from the real process', () => {
  let tally: TallyProcess;
  let client: GrpcTestClient;
  const ops = { authorization: `Bearer ${callers.keys.ops}` };

  beforeAll(async () => {
    tally = await startTally({
      env: { TALLY_CALLERS_FILE: callers.path, TALLY_KEY_ALGORITHM: 'ML-DSA-87', TALLY_INTERNAL_JWT_ALGORITHM: 'ML-DSA-65', TALLY_PHANTOM_TOKEN_TTL: '30s' },
    });
    client = createGrpcTestClient(tally.grpcAddress);
  });
  afterAll(async () => {
    client?.close();
    await tally?.stop();
  });

  it('publishes AKP public keys in the JWKS and ListKeys, never the private seed', async () => {
    await client.unary(rotateKeys, { algorithm: 'ML-DSA-65' }, { metadata: ops });
    const published = await jwks(tally);
    expect(published.map((key) => [key.kty, key.alg]).sort()).toEqual([['AKP', 'ML-DSA-65'], ['AKP', 'ML-DSA-87']]);
    for (const key of published) expect(Object.keys(key).sort()).toEqual(['alg', 'kid', 'kty', 'pub', 'use']);
    const listed = await client.unary(TokenService.method.listKeys, {}, { metadata: ops });
    expect(JSON.stringify(listed.keys.map((key) => key.publicJwk))).not.toContain('priv');
    expect(listed.keys.map((key) => [key.algorithm, key.isDefault]).sort()).toEqual([['ML-DSA-65', false], ['ML-DSA-87', true]]);
  });

  it.each(['ML-DSA-65', 'ML-DSA-87'])('signs a %s JWT that another implementation verifies with the JWKS key, and refuses it altered', async (algorithm) => {
    const issued = await client.unary(issue, { subject: 'alice', format: TokenFormat.JWT, algorithm, audience: ['orders'] }, { metadata: ops });
    expect(decodeProtectedHeader(issued.token)).toMatchObject({ alg: algorithm, typ: 'at+jwt' });
    expect(await nobleVerifies(tally, issued.token)).toBe(true);
    expect((await client.unary(introspect, { token: issued.token }, { metadata: ops })).active).toBe(true);
    const altered = alterSignature(issued.token);
    expect(await nobleVerifies(tally, altered)).toBe(false);
    expect((await client.unary(introspect, { token: altered }, { metadata: ops })).active).toBe(false);
  });

  it('answers FAILED_PRECONDITION for an Issue naming an algorithm with no active key', async () => {
    const status = await grpcStatusOf(client.unary(issue, { subject: 'alice', format: TokenFormat.JWT, algorithm: 'EdDSA' }, { metadata: ops }));
    expect(status.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(status.details).toMatch(/^algorithm: EdDSA has no active signing key/);
  });

  describe('the largest JWT a default Issue makes, signed with ML-DSA-87', () => {
    let token: string;

    beforeAll(async () => {
      const long = (prefix: string, index: number, length: number) => `${prefix}${index}-`.padEnd(length, 'x');
      const claims = { padding: 'p'.repeat(8 * 1024 - '{"padding":""}'.length) };
      const issued = await client.unary(
        issue,
        {
          subject: long('subject', 0, LIMITS.identifierLength),
          clientId: long('client', 0, LIMITS.identifierLength),
          sessionId: long('session', 0, LIMITS.identifierLength),
          audience: Array.from({ length: LIMITS.audiences }, (_, index) => long('audience', index, LIMITS.identifierLength)),
          scopes: Array.from({ length: LIMITS.scopes }, (_, index) => long('scope', index, LIMITS.scopeLength)),
          claims,
          format: TokenFormat.JWT,
        },
        { metadata: ops },
      );
      token = issued.token;
    });

    it('is issued and fits under Envoy\'s default request-header limit as a bearer header', () => {
      expect(decodeProtectedHeader(token).alg).toBe('ML-DSA-87');
      expect(Buffer.byteLength(`authorization: Bearer ${token}`)).toBeLessThan(ENVOY_DEFAULT_HEADERS_BYTES);
    });

    it('introspects active over gRPC, Connect, and RFC 7662 with a plain and a signed (RFC 9701) answer', async () => {
      expect((await client.unary(introspect, { token }, { metadata: ops })).active).toBe(true);
      const connect = await fetch(`${tally.httpUrl}/tally.v1.TokenService/Introspect`, {
        method: 'POST',
        headers: { ...ops, 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
      });
      expect(await connect.json()).toMatchObject({ active: true });
      const form = (accept: string) =>
        fetch(`${tally.httpUrl}/oauth2/introspect`, {
          method: 'POST',
          headers: { ...ops, 'content-type': 'application/x-www-form-urlencoded', accept },
          body: new URLSearchParams({ token }).toString(),
        });
      expect(await (await form('application/json')).json()).toMatchObject({ active: true });
      const signed = await (await form('application/token-introspection+jwt')).text();
      expect(decodeProtectedHeader(signed).alg).toBe('ML-DSA-65');
      expect(await nobleVerifies(tally, signed, INTERNAL_JWKS)).toBe(true);
      expect(await nobleVerifies(tally, alterSignature(signed), INTERNAL_JWKS)).toBe(false);
      // Never with the access-token keys: no access-token verifier can take the answer for a token.
      await expect(nobleVerifies(tally, signed)).rejects.toThrow(/has no AKP key/);
    });

    it('passes Envoy ext_authz Check, and the phantom token that replaces it fits Envoy\'s limit too', async () => {
      const response = await client.unary(
        Authorization.method.check,
        { attributes: { request: { http: { method: 'GET', path: '/orders', host: 'shop.internal', headers: { authorization: `Bearer ${token}` } } } } },
        { metadata: { authorization: `Bearer ${callers.keys.envoy}` } },
      );
      expect(response.status?.code ?? 0).toBe(0);
      const headers = response.httpResponse.case === 'okResponse' ? response.httpResponse.value.headers : [];
      const upstream = headers.map((option) => `${option.header!.key}: ${option.header!.value}\r\n`).join('');
      const phantom = headers.find((option) => option.header!.key === 'authorization')!.header!.value.slice('Bearer '.length);
      expect(decodeProtectedHeader(phantom).alg).toBe('ML-DSA-65');
      expect(await nobleVerifies(tally, phantom, INTERNAL_JWKS)).toBe(true);
      expect(Buffer.byteLength(upstream)).toBeLessThan(ENVOY_DEFAULT_HEADERS_BYTES);
    });

    it('is revoked by value, and then introspects inactive', async () => {
      await client.unary(revoke, { target: { case: 'token', value: token } }, { metadata: ops });
      expect((await client.unary(introspect, { token }, { metadata: ops })).active).toBe(false);
    });
  });
});
