// Envoy ext_authz against the real process, through a client made from
// Envoy's own protos (the generated CheckRequest/CheckResponse schemas on a
// plain grpc-js client): what Envoy would send, what it would do with the answer.

import { create, toJsonString, type MessageInitShape } from '@bufbuild/protobuf';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeaderValueOption_HeaderAppendAction } from '../../src/gen/envoy/config/core/v3/base_pb.js';
import {
  Authorization,
  CheckRequestSchema,
  CheckResponseSchema,
  type CheckResponse,
} from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { Health, HealthCheckResponse_ServingStatus } from '../../src/gen/grpc/health/v1/health_pb.js';
import { TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { CONTEXT_EXTENSIONS, INTERNAL_JWT_TYPE, UPSTREAM_HEADERS } from '../../src/transport/grpc/ext-authz.js';
import { showWire, writeCallersFile } from '../support/keyed-callers.js';
import { createGrpcTestClient, grpcStatusOf, type GrpcTestClient } from '../support/grpc-client.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const callers = writeCallersFile([
  { name: 'envoy', permissions: ['ext_authz'] },
  { name: 'envoy-for-orders', permissions: ['ext_authz'], audiences: ['orders'] },
  { name: 'issuer', permissions: ['issue', 'revoke'] },
  { name: 'reader', permissions: ['introspect'] },
  { name: 'reader-and-sidecar', permissions: ['introspect', 'ext_authz'] },
]);

type CheckInit = MessageInitShape<typeof CheckRequestSchema>;

function checkRequest(headers: Record<string, string>, contextExtensions: Record<string, string> = {}): CheckInit {
  return {
    attributes: {
      request: { http: { method: 'GET', path: '/orders/42', host: 'shop.internal', scheme: 'https', headers } },
      contextExtensions,
    },
  };
}

function headersOf(response: CheckResponse): Record<string, string> {
  const value = response.httpResponse.value;
  return Object.fromEntries((value?.headers ?? []).map((option) => [option.header!.key, option.header!.value]));
}

describe('Envoy ext_authz Check', () => {
  let tally: TallyProcess;
  let grpc: GrpcTestClient;
  const envoy = { authorization: `Bearer ${callers.keys.envoy}` };
  const issuer = { authorization: `Bearer ${callers.keys.issuer}` };

  const check = async (request: CheckInit, metadata = envoy) => {
    const response = await grpc.unary(Authorization.method.check, request, { metadata });
    showWire(
      'ext_authz exchange',
      `→ /envoy.service.auth.v3.Authorization/Check  metadata authorization: Bearer <envoy API key>\n${toJsonString(CheckRequestSchema, create(CheckRequestSchema, request), { prettySpaces: 2 })}\n← grpc-status 0\n${toJsonString(CheckResponseSchema, response, { prettySpaces: 2 })}`,
    );
    return response;
  };
  const issue = (request: MessageInitShape<typeof TokenService.method.issue.input>) =>
    grpc.unary(TokenService.method.issue, request, { metadata: issuer });

  beforeAll(async () => {
    tally = await startTally({ env: { TALLY_CALLERS_FILE: callers.path } });
    grpc = createGrpcTestClient(tally.grpcAddress);
  });
  afterAll(async () => {
    grpc?.close();
    await tally?.stop();
  });

  it('allows an active token and tells the upstream who it is, overwriting what the client sent', async () => {
    const { token, tokenId } = await issue({ subject: 'alice', clientId: 'shop-web', audience: ['orders'], scopes: ['orders:read', 'orders:write'] });
    const response = await check(checkRequest({ authorization: `Bearer ${token}`, [UPSTREAM_HEADERS.subject]: 'mallory' }));
    expect(response.status?.code).toBe(0);
    expect(response.httpResponse.case).toBe('okResponse');
    expect(headersOf(response)).toEqual({
      [UPSTREAM_HEADERS.subject]: 'alice',
      [UPSTREAM_HEADERS.clientId]: 'shop-web',
      [UPSTREAM_HEADERS.scopes]: 'orders:read orders:write',
      [UPSTREAM_HEADERS.tokenId]: tokenId,
    });
    const actions = (response.httpResponse.value?.headers ?? []).map((option) => option.appendAction);
    expect(new Set(actions)).toEqual(new Set([HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD]));
    // Without the phantom token setting the caller's own token goes on unchanged.
    expect(headersOf(response).authorization).toBeUndefined();
  });

  it('removes the upstream headers it has no value for, so the client cannot supply them', async () => {
    const { token } = await issue({ subject: 'bob', scopes: [] });
    const response = await check(checkRequest({ authorization: `Bearer ${token}`, [UPSTREAM_HEADERS.clientId]: 'forged' }));
    expect(response.httpResponse.case).toBe('okResponse');
    if (response.httpResponse.case !== 'okResponse') return;
    expect(response.httpResponse.value.headersToRemove.sort()).toEqual([UPSTREAM_HEADERS.clientId, UPSTREAM_HEADERS.scopes].sort());
  });

  it('reads the token from header_map, as Envoy sends it with encode_raw_headers (text or bytes)', async () => {
    const { token } = await issue({ subject: 'carol' });
    for (const header of [
      { key: 'authorization', value: `Bearer ${token}` },
      { key: 'Authorization', rawValue: new TextEncoder().encode(`Bearer ${token}`) },
    ]) {
      const response = await check({ attributes: { request: { http: { method: 'GET', path: '/', headerMap: { headers: [{ key: ':path', value: '/' }, header] } } } } });
      expect(response.status?.code).toBe(0);
      expect(headersOf(response)[UPSTREAM_HEADERS.subject]).toBe('carol');
    }
  });

  const refusedCases: Array<[string, () => Promise<Record<string, string>>, string]> = [
    ['no authorization header', async () => ({}), 'Bearer'],
    ['a token that was never issued', async () => ({ authorization: 'Bearer tly_notarealtoken' }), 'Bearer error="invalid_token"'],
    ['not a bearer credential', async () => ({ authorization: 'Basic YWxpY2U6c2VjcmV0' }), 'Bearer'],
    [
      'a revoked token',
      async () => {
        const { token } = await issue({ subject: 'dave' });
        await grpc.unary(TokenService.method.revoke, { target: { case: 'subject', value: 'dave' } }, { metadata: issuer });
        return { authorization: `Bearer ${token}` };
      },
      'Bearer error="invalid_token"',
    ],
  ];

  it.each(refusedCases)('denies with 401 and a Bearer challenge: %s', async (_name, headers, challenge) => {
    const response = await check(checkRequest(await headers()));
    expect(response.status?.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(response.httpResponse.case).toBe('deniedResponse');
    if (response.httpResponse.case !== 'deniedResponse') return;
    expect(response.httpResponse.value.status?.code).toBe(401);
    expect(headersOf(response)['www-authenticate']).toBe(challenge);
  });

  it('denies with 403 insufficient_scope when the route demands an audience or scopes the token lacks', async () => {
    const { token } = await issue({ subject: 'erin', audience: ['orders'], scopes: ['orders:read'] });
    const authorization = `Bearer ${token}`;
    const cases: Array<[Record<string, string>, number]> = [
      [{ [CONTEXT_EXTENSIONS.audience]: 'orders', [CONTEXT_EXTENSIONS.scopes]: 'orders:read' }, 0],
      [{ [CONTEXT_EXTENSIONS.audience]: 'billing' }, GrpcStatus.PERMISSION_DENIED],
      [{ [CONTEXT_EXTENSIONS.scopes]: 'orders:read orders:write' }, GrpcStatus.PERMISSION_DENIED],
    ];
    for (const [extensions, code] of cases) {
      const response = await check(checkRequest({ authorization }, extensions));
      expect(response.status?.code, JSON.stringify(extensions)).toBe(code);
      if (code === 0) continue;
      expect(response.httpResponse.case).toBe('deniedResponse');
      if (response.httpResponse.case !== 'deniedResponse') continue;
      expect(response.httpResponse.value.status?.code).toBe(403);
      expect(headersOf(response)['www-authenticate']).toMatch(/^Bearer error="insufficient_scope"/);
    }
  });

  it('sees only tokens of its own audiences when Envoy\'s caller is limited to them', async () => {
    const { token } = await issue({ subject: 'frank', audience: ['billing'] });
    const limited = { authorization: `Bearer ${callers.keys['envoy-for-orders']}` };
    const response = await check(checkRequest({ authorization: `Bearer ${token}` }), limited);
    expect(response.status?.code).toBe(GrpcStatus.UNAUTHENTICATED);
  });

  it('fails the call itself when Envoy\'s own credential is missing, wrong or lacks the permission', async () => {
    const { token } = await issue({ subject: 'gina' });
    const request = checkRequest({ authorization: `Bearer ${token}` });
    const cases: Array<[Record<string, string>, GrpcStatus]> = [
      [{}, GrpcStatus.UNAUTHENTICATED],
      [{ authorization: 'Bearer not-a-key' }, GrpcStatus.UNAUTHENTICATED],
      [issuer, GrpcStatus.PERMISSION_DENIED],
      // Introspect callers cannot borrow the sidecars' path, which has no scan limit for sidecars.
      [{ authorization: `Bearer ${callers.keys.reader}` }, GrpcStatus.PERMISSION_DENIED],
    ];
    for (const [metadata, code] of cases) {
      const failure = await grpcStatusOf(grpc.unary(Authorization.method.check, request, { metadata }));
      expect(failure.code).toBe(code);
    }
  });

  it('reports the Authorization service as serving, for Envoy\'s gRPC health check by service name', async () => {
    const health = await grpc.unary(Health.method.check, { service: Authorization.typeName });
    expect(health.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it('never writes a token it checked to the log', async () => {
    const { token } = await issue({ subject: 'hank' });
    await check(checkRequest({ authorization: `Bearer ${token}` }));
    const lines = tally.logs().filter((line) => line.method === 'envoy.service.auth.v3.Authorization/Check');
    expect(lines.length).toBeGreaterThan(0);
    expect(tally.stdout()).not.toContain(token);
  });
});

describe('Envoy ext_authz Check with TALLY_PHANTOM_TOKEN_TTL', () => {
  let tally: TallyProcess;
  let grpc: GrpcTestClient;

  beforeAll(async () => {
    tally = await startTally({ env: { TALLY_CALLERS_FILE: callers.path, TALLY_PHANTOM_TOKEN_TTL: '30s' } });
    grpc = createGrpcTestClient(tally.grpcAddress);
  });
  afterAll(async () => {
    grpc?.close();
    await tally?.stop();
  });

  it('replaces the opaque token with a short-lived internal JWT that verifies with the internal JWKS only', async () => {
    const { token, tokenId } = await grpc.unary(
      TokenService.method.issue,
      { subject: 'ivy', clientId: 'shop-web', audience: ['orders'], scopes: ['orders:read'], claims: { tenant: 'acme' } },
      { metadata: { authorization: `Bearer ${callers.keys.issuer}` } },
    );
    const response = await grpc.unary(Authorization.method.check, checkRequest({ authorization: `Bearer ${token}` }), {
      metadata: { authorization: `Bearer ${callers.keys.envoy}` },
    });
    showWire('ext_authz phantom-token allow', toJsonString(CheckResponseSchema, response, { prettySpaces: 2 }));
    const authorization = headersOf(response).authorization ?? '';
    expect(authorization).toMatch(/^Bearer ey/);
    expect(authorization).not.toContain(token);
    const jwt = authorization.slice('Bearer '.length);
    const jwks = createLocalJWKSet((await (await fetch(`${tally.httpUrl}/.well-known/internal-jwks.json`)).json()) as JSONWebKeySet);
    const { payload } = await jwtVerify(jwt, jwks, { issuer: 'tally', audience: 'orders', typ: INTERNAL_JWT_TYPE });
    // A verifier of access tokens that skips "typ" (and checks issuer and audience) cannot take it for one:
    // it is signed by a key the access-token JWKS does not hold.
    const accessJwks = createLocalJWKSet((await (await fetch(`${tally.httpUrl}/.well-known/jwks.json`)).json()) as JSONWebKeySet);
    await expect(jwtVerify(jwt, accessJwks, { issuer: 'tally', audience: 'orders' })).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    await expect(jwtVerify(jwt, accessJwks)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    expect(payload).toMatchObject({ sub: 'ivy', client_id: 'shop-web', scope: 'orders:read', jti: tokenId, tenant: 'acme' });
    expect(payload.exp! - payload.iat!).toBe(30);
    expect(decodeProtectedHeader(jwt).typ).toBe(INTERNAL_JWT_TYPE);
    // Leaked back to the edge, the internal JWT is no access token.
    const introspected = await grpc.unary(TokenService.method.introspect, { token: jwt }, {
      metadata: { authorization: `Bearer ${callers.keys.reader}` },
    });
    expect(introspected.active).toBe(false);
  });
});

describe('Envoy ext_authz Check and the scan limit', () => {
  let tally: TallyProcess;
  let grpc: GrpcTestClient;

  beforeAll(async () => {
    tally = await startTally({ env: { TALLY_CALLERS_FILE: callers.path, TALLY_SCAN_LIMIT_RATE: '1', TALLY_SCAN_LIMIT_BURST: '3' } });
    grpc = createGrpcTestClient(tally.grpcAddress);
  });
  afterAll(async () => {
    grpc?.close();
    await tally?.stop();
  });

  const junkChecks = async (caller: string, count: number) => {
    const codes: number[] = [];
    for (let index = 0; index < count; index += 1) {
      const request = checkRequest({ authorization: `Bearer tly_made-up-${index}` });
      const outcome = await grpc
        .unary(Authorization.method.check, request, { metadata: { authorization: `Bearer ${callers.keys[caller]}` } })
        .then(() => GrpcStatus.OK, (error: { code: GrpcStatus }) => error.code);
      codes.push(outcome);
    }
    return codes;
  };

  it('keeps the scan limit on a caller that holds introspect, on the ext_authz path too', async () => {
    const codes = await junkChecks('reader-and-sidecar', 10);
    expect(codes).toContain(GrpcStatus.RESOURCE_EXHAUSTED);
  });

  it('never limits a sidecar that holds ext_authz alone, whatever its end users send', async () => {
    const codes = await junkChecks('envoy', 10);
    expect(codes).toEqual(Array(10).fill(GrpcStatus.OK));
  });
});
