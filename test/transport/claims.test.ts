// One token, four ways out: the JWT access token itself, the RFC 7662 JSON
// answer, the RFC 9701 signed answer and the phantom token Envoy's ext_authz
// forwards upstream. Every registered claim must read the same on all four
// (core/claims.ts), with one audience as a string and several as an array.

import { status as GrpcStatus } from '@grpc/grpc-js';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authorization } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { INTERNAL_JWT_TYPE } from '../../src/transport/grpc/ext-authz.js';
import { writeCallersFile } from '../support/keyed-callers.js';
import { createGrpcTestClient, type GrpcTestClient } from '../support/grpc-client.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const callers = writeCallersFile([
  { name: 'envoy', permissions: ['ext_authz'] },
  { name: 'issuer', permissions: ['issue'] },
  { name: 'resource-server', permissions: ['introspect'] },
]);
const ISSUER = 'https://tally.example';
const TOKEN_CLAIMS = ['iss', 'sub', 'aud', 'scope', 'client_id', 'sid', 'iat', 'exp', 'nbf', 'jti'] as const;
// The phantom token is a JWT of its own: its iat and exp are its own short window.
const IDENTITY_CLAIMS = TOKEN_CLAIMS.filter((name) => name !== 'iat' && name !== 'exp');

function pick(claims: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(names.map((name) => [name, claims[name]]));
}

describe('registered claims, the same on every path', () => {
  let tally: TallyProcess;
  let grpc: GrpcTestClient;
  let internalJwks: ReturnType<typeof createLocalJWKSet>;

  beforeAll(async () => {
    tally = await startTally({ env: { TALLY_CALLERS_FILE: callers.path, TALLY_ISSUER: ISSUER, TALLY_PHANTOM_TOKEN_TTL: '30s' } });
    grpc = createGrpcTestClient(tally.grpcAddress);
    internalJwks = createLocalJWKSet((await (await fetch(`${tally.httpUrl}/.well-known/internal-jwks.json`)).json()) as JSONWebKeySet);
  });
  afterAll(async () => {
    grpc?.close();
    await tally?.stop();
  });

  const introspectJson = async (token: string) => {
    const response = await fetch(`${tally.httpUrl}/oauth2/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${callers.keys['resource-server']}` },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(response.status).toBe(200);
    return (await response.json()) as Record<string, unknown>;
  };

  const introspectSigned = async (token: string) => {
    const response = await fetch(`${tally.httpUrl}/oauth2/introspect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Bearer ${callers.keys['resource-server']}`,
        accept: 'application/token-introspection+jwt',
      },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(response.status).toBe(200);
    const { payload } = await jwtVerify(await response.text(), internalJwks, { issuer: ISSUER, audience: 'resource-server', typ: 'token-introspection+jwt' });
    return payload.token_introspection as Record<string, unknown>;
  };

  const phantom = async (token: string): Promise<JWTPayload> => {
    const response = await grpc.unary(
      Authorization.method.check,
      { attributes: { request: { http: { method: 'GET', path: '/', host: 'api.internal', headers: { authorization: `Bearer ${token}` } } } } },
      { metadata: { authorization: `Bearer ${callers.keys.envoy}` } },
    );
    expect(response.status?.code).toBe(GrpcStatus.OK);
    const value = response.httpResponse.value;
    const authorization = (value?.headers ?? []).find((option) => option.header?.key === 'authorization')?.header?.value ?? '';
    const { payload } = await jwtVerify(authorization.replace(/^Bearer /, ''), internalJwks, { issuer: ISSUER, typ: INTERNAL_JWT_TYPE });
    return payload;
  };

  const cases = [
    { name: 'one audience', audience: ['orders'], aud: 'orders' },
    { name: 'two audiences', audience: ['orders', 'billing'], aud: ['orders', 'billing'] },
    { name: 'no audience, scope, client or session', audience: [], aud: undefined, bare: true },
  ];

  for (const { name, audience, aud, bare } of cases) {
    it(`agree for a JWT with ${name}: the JWT, RFC 7662, RFC 9701 and the phantom token`, async () => {
      const issued = await grpc.unary(
        TokenService.method.issue,
        bare === true
          ? { subject: 'zoe', format: TokenFormat.JWT, audience }
          : { subject: 'zoe', format: TokenFormat.JWT, audience, clientId: 'shop-web', scopes: ['read', 'write'], sessionId: 'session-7', claims: { tenant: 'acme' } },
        { metadata: { authorization: `Bearer ${callers.keys.issuer}` } },
      );
      const seconds = (timestamp: typeof issued.issuedAt) => Number(timestamp!.seconds);
      const expected = bare === true
        ? { iss: ISSUER, sub: 'zoe', iat: seconds(issued.issuedAt), exp: seconds(issued.expiresAt), jti: issued.tokenId }
        : {
            iss: ISSUER, sub: 'zoe', aud, scope: 'read write', client_id: 'shop-web', sid: 'session-7',
            iat: seconds(issued.issuedAt), exp: seconds(issued.expiresAt), jti: issued.tokenId,
          };
      const want = pick(expected, TOKEN_CLAIMS);

      const jwt = decodeJwt(issued.token);
      const json = await introspectJson(issued.token);
      const signed = await introspectSigned(issued.token);
      const internal = await phantom(issued.token);

      expect(pick(jwt, TOKEN_CLAIMS), 'JWT access token').toEqual(want);
      expect(pick(json, TOKEN_CLAIMS), 'RFC 7662 answer').toEqual(want);
      expect(pick(signed, TOKEN_CLAIMS), 'RFC 9701 answer').toEqual(want);
      expect(pick(internal, IDENTITY_CLAIMS), 'phantom token').toEqual(pick(expected, IDENTITY_CLAIMS));
      // Absent means absent, not empty or null, on every path.
      for (const [path, claims] of [['JWT', jwt], ['RFC 7662', json], ['RFC 9701', signed], ['phantom', internal]] as const) {
        for (const claim of TOKEN_CLAIMS) {
          if (expected[claim as keyof typeof expected] === undefined) expect(Object.hasOwn(claims, claim), `${path} ${claim}`).toBe(false);
        }
      }
      // Extra claims travel the same way everywhere.
      if (bare !== true) for (const claims of [jwt, json, signed, internal]) expect(claims.tenant).toBe('acme');
    });
  }
});
