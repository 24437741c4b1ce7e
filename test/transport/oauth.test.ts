// RFC 7662 introspection, RFC 9701 signed answers, RFC 7009 revocation and
// the JWKS on the real process's HTTP port, with plain fetch and raw HTTP/1.1
// bytes, following the RFCs' examples and error cases.

import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { showWire, writeCallersFile } from '../support/keyed-callers.js';
import { createGrpcTestClient, type GrpcTestClient } from '../support/grpc-client.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const callers = writeCallersFile([
  { name: 'orders-api', permissions: ['introspect', 'revoke'] },
  { name: 'billing-api', permissions: ['introspect', 'revoke'], audiences: ['billing'] },
  { name: 'issuer', permissions: ['issue'] },
]);
const basic = (name: string, key = callers.keys[name]!) => `Basic ${Buffer.from(`${name}:${key}`).toString('base64')}`;
const FORM = 'application/x-www-form-urlencoded';

/** One HTTP/1.1 exchange on a fresh socket, exactly as written and read. */
function rawExchange(address: URL, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(address.port), address.hostname, () => socket.end(request));
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
  });
}

describe('OAuth endpoints', () => {
  let tally: TallyProcess;
  let grpc: GrpcTestClient;

  const issue = (request: Parameters<GrpcTestClient['unary']>[1] & { subject: string }) =>
    grpc.unary(TokenService.method.issue, request, { metadata: { authorization: `Bearer ${callers.keys.issuer}` } });
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${tally.httpUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': FORM, authorization: basic('orders-api'), ...headers },
      body,
    });
  const introspect = async (token: string, headers: Record<string, string> = {}) => {
    const response = await post('/oauth2/introspect', new URLSearchParams({ token }).toString(), headers);
    expect(response.status).toBe(200);
    return (await response.json()) as Record<string, unknown>;
  };

  beforeAll(async () => {
    tally = await startTally({ env: { TALLY_CALLERS_FILE: callers.path, TALLY_ISSUER: 'https://tally.example' } });
    grpc = createGrpcTestClient(tally.grpcAddress);
  });
  afterAll(async () => {
    grpc?.close();
    await tally?.stop();
  });

  describe('POST /oauth2/introspect (RFC 7662)', () => {
    it('answers the RFC 7662 §2.1 example request with the §2.2 claims', async () => {
      const { token, tokenId, issuedAt, expiresAt } = await issue({
        subject: 'Z5O3upPC88QrAjx00dis',
        clientId: 'l238j323ds-23ij4',
        audience: ['https://protected.example.net/resource'],
        scopes: ['read', 'write', 'dolphin'],
        claims: { department: 'research' },
      });
      const body = `token=${token}&token_type_hint=access_token`;
      const request = [
        'POST /oauth2/introspect HTTP/1.1',
        `Host: ${new URL(tally.httpUrl).host}`,
        'Accept: application/json',
        `Content-Type: ${FORM}`,
        `Authorization: ${basic('orders-api')}`,
        `Content-Length: ${body.length}`,
        'Connection: close',
        '',
        body,
      ].join('\r\n');
      const response = await rawExchange(new URL(tally.httpUrl), request);
      showWire('RFC 7662 exchange', `${request.replace(callers.keys['orders-api']!, '<key>')}\n\n${response}`);
      const [head, json] = response.split('\r\n\r\n');
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(head).toMatch(/\r\ncontent-type: application\/json\r\n/i);
      expect(head).toMatch(/\r\ncache-control: no-store\r\n/i);
      const answer = JSON.parse(json!) as Record<string, unknown>;
      const seconds = (timestamp: typeof issuedAt) => Number(timestamp!.seconds);
      expect(answer).toEqual({
        active: true,
        client_id: 'l238j323ds-23ij4',
        department: 'research',
        scope: 'read write dolphin',
        sub: 'Z5O3upPC88QrAjx00dis',
        // One audience is a string, as in RFC 7662 §2.2's example and in the JWT itself (core/claims.ts).
        aud: 'https://protected.example.net/resource',
        iss: 'https://tally.example',
        exp: seconds(expiresAt),
        iat: seconds(issuedAt),
        jti: tokenId,
        token_type: 'Bearer',
      });
    });

    it('answers exactly {"active":false} for anything not active, whatever the reason', async () => {
      const revoked = await issue({ subject: 'revoked-user' });
      await post('/oauth2/revoke', `token=${revoked.token}`);
      const foreign = await issue({ subject: 'someone', audience: ['orders'] });
      const cases: Array<[string, string, string]> = [
        ['unknown', 'tly_0000000000000000000000000000000000000000000000000', 'orders-api'],
        ['malformed', 'not a token at all', 'orders-api'],
        ['a forged JWT', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', 'orders-api'],
        ['revoked', revoked.token, 'orders-api'],
        ['outside the caller\'s audiences', foreign.token, 'billing-api'],
      ];
      for (const [name, token, caller] of cases) {
        const response = await post('/oauth2/introspect', new URLSearchParams({ token }).toString(), { authorization: basic(caller) });
        expect(response.status, name).toBe(200);
        expect(await response.text(), name).toBe('{"active":false}');
      }
    });

    it('accepts the caller\'s API key as a Bearer credential too', async () => {
      const { token } = await issue({ subject: 'bearer-user' });
      const answer = await introspect(token, { authorization: `Bearer ${callers.keys['orders-api']}` });
      expect(answer).toMatchObject({ active: true, sub: 'bearer-user' });
    });

    it('signs the answer as RFC 9701 asks when the caller accepts application/token-introspection+jwt', async () => {
      const { token, tokenId } = await issue({ subject: 'signed-user', scopes: ['read'] });
      const response = await post('/oauth2/introspect', `token=${token}`, { accept: 'application/token-introspection+jwt' });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/token-introspection+jwt');
      const jwt = await response.text();
      expect(decodeProtectedHeader(jwt).typ).toBe('token-introspection+jwt');
      const jwks = createLocalJWKSet((await (await fetch(`${tally.httpUrl}/.well-known/internal-jwks.json`)).json()) as JSONWebKeySet);
      const { payload } = await jwtVerify(jwt, jwks, { issuer: 'https://tally.example', audience: 'orders-api', typ: 'token-introspection+jwt' });
      // Not an access token to a verifier that skips "typ": the access-token JWKS has no key for it, and Tally's Introspect refuses it.
      const accessJwks = createLocalJWKSet((await (await fetch(`${tally.httpUrl}/.well-known/jwks.json`)).json()) as JSONWebKeySet);
      await expect(jwtVerify(jwt, accessJwks, { issuer: 'https://tally.example', audience: 'orders-api' })).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
      expect(await introspect(jwt)).toEqual({ active: false });
      expect(payload.iat).toBeTypeOf('number');
      expect(payload.token_introspection).toMatchObject({ active: true, sub: 'signed-user', scope: 'read', jti: tokenId });
      expect(payload.sub).toBeUndefined();

      const inactive = await post('/oauth2/introspect', 'token=tly_unknown', { accept: 'application/token-introspection+jwt' });
      const { payload: inactivePayload } = await jwtVerify(await inactive.text(), jwks, { audience: 'orders-api' });
      expect(inactivePayload.token_introspection).toEqual({ active: false });
    });
  });

  describe('refusals on both endpoints', () => {
    const cases: Array<{ name: string; path: string; init: RequestInit; status: number; error?: string; challenge?: RegExp }> = [];
    for (const path of ['/oauth2/introspect', '/oauth2/revoke']) {
      const form = (body: string, headers: Record<string, string> = {}) => ({
        method: 'POST',
        headers: { 'content-type': FORM, authorization: basic('orders-api'), ...headers },
        body,
      });
      cases.push(
        { name: 'no token parameter', path, init: form('token_type_hint=access_token'), status: 400, error: 'invalid_request' },
        { name: 'an empty token', path, init: form('token='), status: 400, error: 'invalid_request' },
        { name: 'the token parameter twice', path, init: form('token=a&token=b'), status: 400, error: 'invalid_request' },
        { name: 'no client credential', path, init: { method: 'POST', headers: { 'content-type': FORM }, body: 'token=a' }, status: 401, error: 'invalid_client', challenge: /^Basic realm=/ },
        { name: 'a wrong API key (Basic)', path, init: form('token=a', { authorization: basic('orders-api', 'wrong') }), status: 401, error: 'invalid_client', challenge: /^Basic / },
        { name: 'a wrong API key (Bearer)', path, init: form('token=a', { authorization: 'Bearer wrong' }), status: 401, error: 'invalid_client', challenge: /^Bearer / },
        { name: 'a good key under another caller\'s name', path, init: form('token=a', { authorization: basic('billing-api', callers.keys['orders-api']) }), status: 401, error: 'invalid_client' },
        { name: 'a caller without the permission', path, init: form('token=a', { authorization: basic('issuer') }), status: 403, error: 'unauthorized_client' },
        { name: 'a JSON body', path, init: form('{"token":"a"}', { 'content-type': 'application/json' }), status: 415, error: 'invalid_request' },
        { name: 'a gzip body', path, init: { ...form('token=a'), body: new Uint8Array(gzipSync('token=a')), headers: { 'content-type': FORM, 'content-encoding': 'gzip', authorization: basic('orders-api') } }, status: 415, error: 'invalid_request' },
        { name: 'a body in an unknown content coding', path, init: form('token=a', { 'content-encoding': 'x-made-up' }), status: 415, error: 'invalid_request' },
        { name: 'a body over the size limit', path, init: form(`token=${'a'.repeat(70 * 1024)}`), status: 413, error: 'invalid_request' },
        { name: 'GET', path, init: { method: 'GET' }, status: 405 },
        { name: 'PUT', path, init: { method: 'PUT', body: 'token=a' }, status: 405 },
      );
    }

    it.each(cases)('$path refuses $name with $status', async ({ path, init, status, error, challenge }) => {
      const response = await fetch(`${tally.httpUrl}${path}`, init);
      expect(response.status).toBe(status);
      if (status === 405) expect(response.headers.get('allow')).toBe('POST');
      // RFC 7694 §3: a 415 for a content coding says which codings are accepted.
      if ((init.headers as Record<string, string> | undefined)?.['content-encoding'] !== undefined) expect(response.headers.get('accept-encoding')).toBe('identity');
      if (error !== undefined) expect(((await response.json()) as { error: string }).error).toBe(error);
      if (challenge !== undefined) expect(response.headers.get('www-authenticate')).toMatch(challenge);
    });
  });

  describe('POST /oauth2/revoke (RFC 7009)', () => {
    it('revokes a token, after which it introspects inactive on both APIs', async () => {
      const { token } = await issue({ subject: 'to-revoke' });
      expect((await introspect(token)).active).toBe(true);
      const response = await post('/oauth2/revoke', new URLSearchParams({ token, token_type_hint: 'access_token' }).toString());
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('');
      expect(await introspect(token)).toEqual({ active: false });
      const viaGrpc = await grpc.unary(TokenService.method.introspect, { token }, { metadata: { authorization: `Bearer ${callers.keys['orders-api']}` } });
      expect(viaGrpc.active).toBe(false);
    });

    it('answers 200 for tokens that are unknown, malformed or of an unknown hint type (no oracle)', async () => {
      for (const body of ['token=tly_unknown', 'token=garbage', 'token=tly_x&token_type_hint=refresh_token']) {
        const response = await post('/oauth2/revoke', body);
        expect(response.status, body).toBe(200);
      }
    });

    it('leaves a token outside a limited caller\'s audiences alone, answering 200 all the same', async () => {
      const { token } = await issue({ subject: 'not-billings', audience: ['orders'] });
      const response = await post('/oauth2/revoke', `token=${token}`, { authorization: basic('billing-api') });
      expect(response.status).toBe(200);
      expect((await introspect(token)).active).toBe(true);
    });
  });

  describe('GET /.well-known/jwks.json', () => {
    it('serves the ring\'s public keys to anyone, cacheable for a short while', async () => {
      const response = await fetch(`${tally.httpUrl}/.well-known/jwks.json`);
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('public, max-age=60, stale-if-error=86400');
      const { keys } = (await response.json()) as { keys: Array<Record<string, unknown>> };
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) {
        expect(key).toMatchObject({ use: 'sig', alg: 'EdDSA' });
        expect(key.kid).toBeTypeOf('string');
        expect(key.d).toBeUndefined();
      }
    });

    it('keeps the internal key apart: served at /.well-known/internal-jwks.json, never with the ring\'s keys', async () => {
      const ring = (await (await fetch(`${tally.httpUrl}/.well-known/jwks.json`)).json()) as { keys: Array<Record<string, unknown>> };
      const response = await fetch(`${tally.httpUrl}/.well-known/internal-jwks.json`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/jwk-set+json');
      const { keys } = (await response.json()) as { keys: Array<Record<string, unknown>> };
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', use: 'sig', alg: 'EdDSA' });
      expect(keys[0]!.d).toBeUndefined();
      expect(ring.keys.map((key) => key.kid)).not.toContain(keys[0]!.kid);
    });
  });

  it('writes no token value to the log', async () => {
    const { token } = await issue({ subject: 'log-check' });
    await introspect(token);
    await post('/oauth2/revoke', `token=${token}`);
    await post('/oauth2/introspect', `token=${token}&token=${token}`);
    const lines = tally.logs().filter((line) => String(line.method).startsWith('POST /oauth2/'));
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(tally.stdout()).not.toContain(token);
  });
});
