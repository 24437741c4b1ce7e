import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControllableStore, type ControllableStore } from '../support/controllable-store.js';
import { eventually } from '../support/eventually.js';
import { createGrpcTestClient, grpcStatusOf, type GrpcTestClient } from '../support/grpc-client.js';
import { startInProcessTally, TEST_ISSUER, type InProcessTally } from '../support/in-process-tally.js';
import { create, toBinary } from '@bufbuild/protobuf';
import { IssueRequestSchema, KeyState, TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { startRawGrpcCall } from '../support/raw-grpc.js';

const { issue, introspect, revoke, rotateKeys, listKeys, revokeKey } = TokenService.method;

describe('TokenService over gRPC (grpc-js server, independent grpc-js client)', () => {
  let tally: InProcessTally;
  let client: GrpcTestClient;
  let slowStore: ControllableStore;

  beforeAll(async () => {
    slowStore = createControllableStore();
    tally = await startInProcessTally({ store: slowStore.store, maxMessageBytes: 16 * 1024 });
    client = createGrpcTestClient(tally.grpcAddress);
  });
  afterAll(async () => {
    slowStore.release();
    client.close();
    await tally.close();
  });

  it('issues an opaque token that introspects active with every field the request gave', async () => {
    const issued = await client.unary(issue, {
      subject: 'alice',
      clientId: 'web',
      audience: ['orders'],
      scopes: ['orders:read', 'orders:write'],
      ttl: { seconds: 600n },
      claims: { tenant: 'acme', tier: 3 },
      sessionId: 'session-1',
    });
    expect(issued.format).toBe(TokenFormat.OPAQUE);
    expect(issued.tokenId).not.toBe('');
    expect(Number(issued.expiresAt!.seconds - issued.issuedAt!.seconds)).toBe(600);

    const answer = await client.unary(introspect, { token: issued.token, audience: 'orders', requiredScopes: ['orders:read'] });
    expect(answer).toMatchObject({
      active: true,
      tokenId: issued.tokenId,
      format: TokenFormat.OPAQUE,
      subject: 'alice',
      clientId: 'web',
      audience: ['orders'],
      scopes: ['orders:read', 'orders:write'],
      issuer: TEST_ISSUER,
      claims: { tenant: 'acme', tier: 3 },
      sessionId: 'session-1',
    });
    expect(answer.expiresAt?.seconds).toBe(issued.expiresAt?.seconds);
  });

  it('issues a JWT when asked, and it introspects active as a JWT', async () => {
    const issued = await client.unary(issue, { subject: 'bob', format: TokenFormat.JWT });
    expect(issued.format).toBe(TokenFormat.JWT);
    expect(issued.token.split('.')).toHaveLength(3);
    const answer = await client.unary(introspect, { token: issued.token });
    expect(answer).toMatchObject({ active: true, format: TokenFormat.JWT, subject: 'bob', tokenId: issued.tokenId });
  });

  it('answers an inactive token with active=false and no other field set', async () => {
    const issued = await client.unary(issue, { subject: 'carol', audience: ['orders'] });
    const wrongAudience = await client.unary(introspect, { token: issued.token, audience: 'billing' });
    const garbage = await client.unary(introspect, { token: 'not-a-token' });
    for (const answer of [wrongAudience, garbage]) {
      expect(answer.active).toBe(false);
      expect(answer.tokenId).toBe('');
      expect(answer.subject).toBe('');
      expect(answer.format).toBe(TokenFormat.UNSPECIFIED);
      expect(answer.audience).toEqual([]);
      expect(answer.issuedAt).toBeUndefined();
      expect(answer.claims).toBeUndefined();
    }
  });

  it('revokes by token, by token id, by subject, by client and by session', async () => {
    const cases = [
      { issueWith: { subject: 'r1' }, target: (token: string) => ({ case: 'token' as const, value: token }) },
      { issueWith: { subject: 'r2' }, target: (_token: string, tokenId: string) => ({ case: 'tokenId' as const, value: tokenId }) },
      { issueWith: { subject: 'r3' }, target: () => ({ case: 'subject' as const, value: 'r3' }) },
      { issueWith: { subject: 'r4', clientId: 'client-r4' }, target: () => ({ case: 'clientId' as const, value: 'client-r4' }) },
      { issueWith: { subject: 'r5', sessionId: 'session-r5' }, target: () => ({ case: 'sessionId' as const, value: 'session-r5' }) },
    ];
    for (const { issueWith, target } of cases) {
      for (const format of [TokenFormat.OPAQUE, TokenFormat.JWT]) {
        const issued = await client.unary(issue, { ...issueWith, format });
        await client.unary(revoke, { target: target(issued.token, issued.tokenId) });
        const answer = await client.unary(introspect, { token: issued.token });
        expect(answer.active, `${JSON.stringify(issueWith)} format ${format}`).toBe(false);
      }
    }
  });

  it('revoking something unknown succeeds (no oracle, RFC 7009)', async () => {
    await expect(client.unary(revoke, { target: { case: 'tokenId', value: 'unknown-id' } })).resolves.toBeDefined();
  });

  it('refuses a token sent as token_id with INVALID_ARGUMENT, leaves the token active and never logs it', async () => {
    const issued = await client.unary(issue, { subject: 'pasted-into-token-id' });
    const status = await grpcStatusOf(client.unary(revoke, { target: { case: 'tokenId', value: issued.token } }));
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details.startsWith('token_id:')).toBe(true);
    expect(status.details).not.toContain(issued.token);
    expect((await client.unary(introspect, { token: issued.token })).active).toBe(true);
    await eventually(async () => {
      expect(tally.logs().some((line) => line.method === 'tally.v1.TokenService/Revoke' && line.code === 'invalid_argument')).toBe(true);
    }, 2_000);
    expect(tally.rawLogs()).not.toContain(issued.token);
  });

  it('rotates keys: the new key is active, the old one retiring, and ListKeys agrees', async () => {
    const before = await client.unary(listKeys, {});
    const rotated = await client.unary(rotateKeys, { algorithm: 'EdDSA' });
    const active = rotated.keys.filter((key) => key.state === KeyState.ACTIVE);
    expect(active).toHaveLength(1);
    expect(active[0]!.algorithm).toBe('EdDSA');
    expect(active[0]!.isDefault).toBe(true);
    expect(active[0]!.publicJwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    expect(active[0]!.publicJwk).not.toHaveProperty('d');
    const previous = before.keys.find((key) => key.state === KeyState.ACTIVE)!;
    const retiring = rotated.keys.find((key) => key.kid === previous.kid)!;
    expect(retiring.state).toBe(KeyState.RETIRING);
    expect(retiring.retiresAt).toBeDefined();
    const after = await client.unary(listKeys, {});
    expect(after.keys.map((key) => key.kid).sort()).toEqual(rotated.keys.map((key) => key.kid).sort());
  });

  it('revokes a key: its JWTs go inactive, it leaves ListKeys, and a new key signs', async () => {
    const jwt = await client.unary(issue, { subject: 'key-victim', format: TokenFormat.JWT });
    const { keys } = await client.unary(listKeys, {});
    const active = keys.find((key) => key.state === KeyState.ACTIVE)!;
    const after = await client.unary(revokeKey, { kid: active.kid });
    expect(after.keys.map((key) => key.kid)).not.toContain(active.kid);
    expect(after.keys.filter((key) => key.state === KeyState.ACTIVE)).toHaveLength(1);
    expect((await client.unary(introspect, { token: jwt.token })).active).toBe(false);
    const fresh = await client.unary(issue, { subject: 'key-victim', format: TokenFormat.JWT });
    expect((await client.unary(introspect, { token: fresh.token })).active).toBe(true);
    expect((await client.unary(listKeys, {})).keys.map((key) => key.kid)).not.toContain(active.kid);
  });

  describe('refuses bad requests with INVALID_ARGUMENT naming the field', () => {
    const cases = [
      { name: 'missing subject', call: () => client.unary(issue, {}), field: 'subject' },
      { name: 'negative ttl', call: () => client.unary(issue, { subject: 'a', ttl: { seconds: -5n } }), field: 'ttl' },
      { name: 'negative ttl nanos', call: () => client.unary(issue, { subject: 'a', ttl: { nanos: -1 } }), field: 'ttl' },
      { name: 'overflowing ttl', call: () => client.unary(issue, { subject: 'a', ttl: { seconds: 2n ** 62n } }), field: 'ttl' },
      { name: 'ttl above the maximum', call: () => client.unary(issue, { subject: 'a', ttl: { seconds: 10n ** 7n } }), field: 'ttl' },
      { name: 'unknown token format', call: () => client.unary(issue, { subject: 'a', format: 9 as TokenFormat }), field: 'format' },
      { name: 'revoke with no target', call: () => client.unary(revoke, {}), field: 'target' },
      { name: 'revoke an empty token id', call: () => client.unary(revoke, { target: { case: 'tokenId', value: '' } }), field: 'token_id' },
      { name: 'unknown algorithm', call: () => client.unary(rotateKeys, { algorithm: 'HS256' }), field: 'algorithm' },
      { name: 'revoke a key with no kid', call: () => client.unary(revokeKey, {}), field: 'kid' },
      { name: 'revoke a key with a malformed kid', call: () => client.unary(revokeKey, { kid: 'a/b' }), field: 'kid' },
      { name: 'Issue naming an unknown algorithm', call: () => client.unary(issue, { subject: 'a', format: TokenFormat.JWT, algorithm: 'ML-DSA-99' }), field: 'algorithm' },
      { name: 'an opaque Issue naming an algorithm', call: () => client.unary(issue, { subject: 'a', algorithm: 'EdDSA' }), field: 'algorithm' },
      { name: 'SetDefaultAlgorithm naming none', call: () => client.unary(TokenService.method.setDefaultAlgorithm, {}), field: 'algorithm' },
      { name: 'RetireAlgorithm naming an unknown one', call: () => client.unary(TokenService.method.retireAlgorithm, { algorithm: 'none' }), field: 'algorithm' },
    ];
    it.each(cases)('$name', async ({ call, field }) => {
      const status = await grpcStatusOf(call());
      expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(status.details.startsWith(`${field}:`)).toBe(true);
    });
  });

  it('answers a request that is not a valid message with INVALID_ARGUMENT, not INTERNAL', async () => {
    const status = await grpcStatusOf(client.unaryRaw(issue, new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff])));
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('answers a message larger than TALLY_MAX_MESSAGE_BYTES with RESOURCE_EXHAUSTED', async () => {
    const status = await grpcStatusOf(client.unary(issue, { subject: 'a', claims: { padding: 'x'.repeat(32 * 1024) } }));
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('ends a call at the deadline the client sent, even when the client does not enforce it', async () => {
    slowStore.hold();
    try {
      const started = performance.now();
      // grpc-timeout only, no client-side timer: whatever ends the call is the server.
      const call = startRawGrpcCall(tally.grpcAddress, '/tally.v1.TokenService/Issue', { 'grpc-timeout': '200m' });
      call.send(toBinary(IssueRequestSchema, create(IssueRequestSchema, { subject: 'slow' })));
      const { status } = await call.result;
      expect(status).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      slowStore.release();
    }
    await eventually(async () => {
      const line = tally.logs().find((entry) => entry.method === 'tally.v1.TokenService/Issue' && entry.code === 'deadline_exceeded');
      expect(line).toBeDefined();
    }, 2_000);
  });

  it('a client deadline shorter than the store takes answers DEADLINE_EXCEEDED', async () => {
    slowStore.hold();
    try {
      const status = await grpcStatusOf(client.unary(issue, { subject: 'slow' }, { deadlineMs: 100 }));
      expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    } finally {
      slowStore.release();
    }
  });

  it('logs one line per call with method, code, duration, peer, caller and token id', async () => {
    const issued = await client.unary(issue, { subject: 'logged' });
    await client.unary(introspect, { token: issued.token });
    const lines = tally.logs().filter((entry) => entry.token_id === issued.tokenId);
    expect(lines.map((line) => line.method)).toEqual(['tally.v1.TokenService/Issue', 'tally.v1.TokenService/Introspect']);
    for (const line of lines) {
      expect(line).toMatchObject({ protocol: 'grpc', code: 'ok' });
      expect(typeof line.duration_ms).toBe('number');
      expect(line.peer).toMatch(/^127\.0\.0\.1:\d+$/);
      // No callers file: the loopback client is protected mode's local caller.
      expect(line.caller).toBe('local');
    }
    expect(tally.rawLogs()).not.toContain(issued.token);
  });
});
