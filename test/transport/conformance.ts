// The one TokenService suite every port must pass: the same calls give the
// same answers, the same status codes and the same messages over the gRPC
// port and over each protocol of the HTTP port. A port's test file hands it a
// client factory and nothing else, as test/store/conformance.ts does for
// stores; what only one port has (HTTP's GET refusal, raw gRPC deadlines)
// stays in that port's own file.

import type { DescMessage, DescMethodUnary, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import { Code } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyState, TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { createControllableStore, type ControllableStore } from '../support/controllable-store.js';
import { eventually } from '../support/eventually.js';
import { startInProcessTally, TEST_ISSUER, type InProcessTally } from '../support/in-process-tally.js';
import { kidOf } from '../support/tally-clients.js';

/** How a failed call reached the client: its gRPC status code and message. */
export interface CallFailure {
  code: Code;
  message: string;
}

export interface CallOptions {
  timeoutMs?: number;
  /** Sent as gRPC metadata or as HTTP headers. */
  headers?: Record<string, string>;
}

export interface TokenServiceClient {
  call<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    request: MessageInitShape<I>,
    options?: CallOptions,
  ): Promise<MessageShape<O>>;
  /** What the client library threw for a failed call, as a status. */
  failureFrom(error: unknown): CallFailure;
  close(): void;
}

export interface PortUnderTest {
  /** The protocol the call log names for this client's calls. */
  protocol: 'grpc' | 'connect' | 'grpc-web';
  connect(tally: InProcessTally): TokenServiceClient;
}

/** Large enough for every valid request here, small enough for a test to pass cheaply. */
// The smallest TALLY_MAX_MESSAGE_BYTES accepts.
const MAX_MESSAGE_BYTES = 16 * 1024;

const { issue, introspect, revoke, rotateKeys, listKeys, setDefaultAlgorithm, retireAlgorithm, revokeKey } = TokenService.method;

export function describeTokenServiceConformance(name: string, port: PortUnderTest): void {
  describe(`TokenService over ${name}`, () => {
    let tally: InProcessTally;
    let client: TokenServiceClient;
    let slowStore: ControllableStore;

    beforeAll(async () => {
      slowStore = createControllableStore();
      tally = await startInProcessTally({ store: slowStore.store, maxMessageBytes: MAX_MESSAGE_BYTES });
      client = port.connect(tally);
    });
    afterAll(async () => {
      slowStore?.release();
      client?.close();
      await tally?.close();
    });

    async function failureOf(call: Promise<unknown>): Promise<CallFailure> {
      try {
        await call;
      } catch (error) {
        return client.failureFrom(error);
      }
      throw new Error('the call succeeded but was expected to fail');
    }

    /** The call log's lines so far, once `found` holds for them (a line may be written just after the client has its answer). */
    const logsOnce = (found: (lines: Record<string, unknown>[]) => boolean) =>
      eventually(async () => {
        const lines = tally.logs();
        if (!found(lines)) throw new Error('the call log does not have the line yet');
        return lines;
      }, 2_000);

    describe('Issue and Introspect', () => {
      it('issues an opaque token that introspects active with every field the request gave', async () => {
        const issued = await client.call(issue, {
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

        const answer = await client.call(introspect, { token: issued.token, audience: 'orders', requiredScopes: ['orders:read'] });
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
        const issued = await client.call(issue, { subject: 'bob', format: TokenFormat.JWT });
        expect(issued.format).toBe(TokenFormat.JWT);
        expect(issued.token.split('.')).toHaveLength(3);
        const answer = await client.call(introspect, { token: issued.token });
        expect(answer).toMatchObject({ active: true, format: TokenFormat.JWT, subject: 'bob', tokenId: issued.tokenId });
      });

      it('walks issue → introspect active → revoke → introspect inactive, opaque and JWT', async () => {
        for (const format of [TokenFormat.OPAQUE, TokenFormat.JWT]) {
          const issued = await client.call(issue, {
            subject: 'alice',
            audience: ['orders'],
            scopes: ['orders:read'],
            format,
            claims: { tenant: 'acme' },
            ttl: { seconds: 120n },
          });
          expect(issued.format).toBe(format);
          const active = await client.call(introspect, { token: issued.token, requiredScopes: ['orders:read'] });
          expect(active).toMatchObject({
            active: true,
            tokenId: issued.tokenId,
            subject: 'alice',
            format,
            issuer: TEST_ISSUER,
            claims: { tenant: 'acme' },
          });
          await client.call(revoke, { target: { case: 'token', value: issued.token } });
          const inactive = await client.call(introspect, { token: issued.token });
          expect(inactive.active).toBe(false);
          expect(inactive.tokenId).toBe('');
          expect(inactive.subject).toBe('');
        }
      });

      it('answers an inactive token with active=false and no other field set', async () => {
        const issued = await client.call(issue, { subject: 'carol', audience: ['orders'] });
        const wrongAudience = await client.call(introspect, { token: issued.token, audience: 'billing' });
        const garbage = await client.call(introspect, { token: 'not-a-token' });
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
    });

    describe('Revoke', () => {
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
            const issued = await client.call(issue, { ...issueWith, format });
            await client.call(revoke, { target: target(issued.token, issued.tokenId) });
            const answer = await client.call(introspect, { token: issued.token });
            expect(answer.active, `${JSON.stringify(issueWith)} format ${format}`).toBe(false);
          }
        }
      });

      it('revoking something unknown succeeds (no oracle, RFC 7009)', async () => {
        await expect(client.call(revoke, { target: { case: 'tokenId', value: 'unknown-id' } })).resolves.toBeDefined();
      });

      it('refuses a token sent as token_id with INVALID_ARGUMENT, leaves the token active and never logs it', async () => {
        const issued = await client.call(issue, { subject: 'pasted-into-token-id' });
        const failure = await failureOf(client.call(revoke, { target: { case: 'tokenId', value: issued.token } }));
        expect(failure.code).toBe(Code.InvalidArgument);
        expect(failure.message.startsWith('token_id:')).toBe(true);
        expect(failure.message).not.toContain(issued.token);
        expect((await client.call(introspect, { token: issued.token })).active).toBe(true);
        await logsOnce((lines) => lines.some((line) => line.method === 'tally.v1.TokenService/Revoke' && line.code === 'invalid_argument'));
        expect(tally.rawLogs()).not.toContain(issued.token);
      });
    });

    describe('the key ring', () => {
      it('rotates keys: the new key is active, the old one retiring, and ListKeys agrees', async () => {
        const before = await client.call(listKeys, {});
        const rotated = await client.call(rotateKeys, { algorithm: 'EdDSA' });
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
        const after = await client.call(listKeys, {});
        expect(after.keys.map((key) => key.kid).sort()).toEqual(rotated.keys.map((key) => key.kid).sort());
      });

      it('rotates the default algorithm\'s key when the request names none', async () => {
        const rotated = await client.call(rotateKeys, {});
        const listed = await client.call(listKeys, {});
        expect(listed.keys.filter((key) => key.state === KeyState.ACTIVE)).toHaveLength(1);
        expect(listed.keys.map((key) => key.kid).sort()).toEqual(rotated.keys.map((key) => key.kid).sort());
      });

      it('adds a second algorithm, signs with it by default once it is the default, and retires the one before', async () => {
        const added = await client.call(rotateKeys, { algorithm: 'ES256' });
        const es256 = added.keys.find((key) => key.algorithm === 'ES256' && key.state === KeyState.ACTIVE)!;
        expect(es256.isDefault).toBe(false);
        expect(es256.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256' });
        expect(added.keys.find((key) => key.algorithm === 'EdDSA' && key.state === KeyState.ACTIVE)?.isDefault).toBe(true);

        const switched = await client.call(setDefaultAlgorithm, { algorithm: 'ES256' });
        expect(switched.keys.find((key) => key.kid === es256.kid)?.isDefault).toBe(true);
        const signed = await client.call(issue, { subject: 'default-signer', format: TokenFormat.JWT });
        expect(kidOf(signed.token)).toBe(es256.kid);
        // Naming an algorithm still picks its key.
        const byName = await client.call(issue, { subject: 'named-signer', format: TokenFormat.JWT, algorithm: 'EdDSA' });
        const eddsa = switched.keys.find((key) => key.algorithm === 'EdDSA' && key.state === KeyState.ACTIVE)!;
        expect(kidOf(byName.token)).toBe(eddsa.kid);

        const retired = await client.call(retireAlgorithm, { algorithm: 'EdDSA' });
        expect(retired.keys.find((key) => key.kid === eddsa.kid)?.state).toBe(KeyState.RETIRING);
        expect(retired.keys.filter((key) => key.state === KeyState.ACTIVE).map((key) => key.algorithm)).toEqual(['ES256']);
        // A retiring key still verifies what it signed.
        expect((await client.call(introspect, { token: byName.token })).active).toBe(true);
        expect((await client.call(listKeys, {})).keys.map((key) => key.kid).sort()).toEqual(retired.keys.map((key) => key.kid).sort());

        // Back as it was, for the tests after this one.
        await client.call(rotateKeys, { algorithm: 'EdDSA' });
        await client.call(setDefaultAlgorithm, { algorithm: 'EdDSA' });
        await client.call(retireAlgorithm, { algorithm: 'ES256' });
      });

      it('refuses with FAILED_PRECONDITION, in the core\'s words, what the key ring cannot do', async () => {
        const noKey = await failureOf(client.call(setDefaultAlgorithm, { algorithm: 'ES384' }));
        expect(noKey.code).toBe(Code.FailedPrecondition);
        expect(noKey.message).toBe('algorithm: ES384 has no active key; add one with RotateKeys first');
        const theDefault = await failureOf(client.call(retireAlgorithm, { algorithm: 'EdDSA' }));
        expect(theDefault.code).toBe(Code.FailedPrecondition);
        expect(theDefault.message).toBe('algorithm: EdDSA is the default; make another algorithm the default before retiring it');
        const notInUse = await failureOf(client.call(retireAlgorithm, { algorithm: 'ES384' }));
        expect(notInUse.code).toBe(Code.FailedPrecondition);
        expect(notInUse.message).toBe('algorithm: ES384 has no active key to retire');
        const unsigned = await failureOf(client.call(issue, { subject: 'a', format: TokenFormat.JWT, algorithm: 'ES384' }));
        expect(unsigned.code).toBe(Code.FailedPrecondition);
        expect(unsigned.message.startsWith('algorithm: ES384 has no active signing key')).toBe(true);
      });

      it('revokes a key: its JWTs go inactive, it leaves ListKeys, and a new key signs', async () => {
        const jwt = await client.call(issue, { subject: 'key-victim', format: TokenFormat.JWT });
        const { keys } = await client.call(listKeys, {});
        const active = keys.find((key) => key.state === KeyState.ACTIVE)!;
        const after = await client.call(revokeKey, { kid: active.kid });
        expect(after.keys.map((key) => key.kid)).not.toContain(active.kid);
        expect(after.keys.filter((key) => key.state === KeyState.ACTIVE)).toHaveLength(1);
        expect((await client.call(introspect, { token: jwt.token })).active).toBe(false);
        const fresh = await client.call(issue, { subject: 'key-victim', format: TokenFormat.JWT });
        expect((await client.call(introspect, { token: fresh.token })).active).toBe(true);
        expect((await client.call(listKeys, {})).keys.map((key) => key.kid)).not.toContain(active.kid);
      });
    });

    describe('refuses bad requests with INVALID_ARGUMENT naming the field', () => {
      const cases = [
        { name: 'missing subject', call: () => client.call(issue, {}), field: 'subject' },
        { name: 'negative ttl', call: () => client.call(issue, { subject: 'a', ttl: { seconds: -5n } }), field: 'ttl' },
        { name: 'ttl of minus one second', call: () => client.call(issue, { subject: 'a', ttl: { seconds: -1n } }), field: 'ttl' },
        { name: 'negative ttl nanos', call: () => client.call(issue, { subject: 'a', ttl: { nanos: -1 } }), field: 'ttl' },
        { name: 'overflowing ttl', call: () => client.call(issue, { subject: 'a', ttl: { seconds: 2n ** 62n } }), field: 'ttl' },
        { name: 'ttl above the maximum', call: () => client.call(issue, { subject: 'a', ttl: { seconds: 10n ** 7n } }), field: 'ttl' },
        { name: 'unknown token format', call: () => client.call(issue, { subject: 'a', format: 9 as TokenFormat }), field: 'format' },
        { name: 'revoke with no target', call: () => client.call(revoke, {}), field: 'target' },
        { name: 'revoke an empty token id', call: () => client.call(revoke, { target: { case: 'tokenId', value: '' } }), field: 'token_id' },
        { name: 'unknown algorithm', call: () => client.call(rotateKeys, { algorithm: 'HS256' }), field: 'algorithm' },
        { name: 'the algorithm "none"', call: () => client.call(rotateKeys, { algorithm: 'none' }), field: 'algorithm' },
        { name: 'revoke a key with no kid', call: () => client.call(revokeKey, {}), field: 'kid' },
        { name: 'revoke a key with a malformed kid', call: () => client.call(revokeKey, { kid: 'a/b' }), field: 'kid' },
        { name: 'Issue naming an unknown algorithm', call: () => client.call(issue, { subject: 'a', format: TokenFormat.JWT, algorithm: 'ML-DSA-99' }), field: 'algorithm' },
        { name: 'an opaque Issue naming an algorithm', call: () => client.call(issue, { subject: 'a', algorithm: 'EdDSA' }), field: 'algorithm' },
        { name: 'SetDefaultAlgorithm naming none', call: () => client.call(setDefaultAlgorithm, {}), field: 'algorithm' },
        { name: 'RetireAlgorithm naming an unknown one', call: () => client.call(retireAlgorithm, { algorithm: 'none' }), field: 'algorithm' },
      ];
      it.each(cases)('$name', async ({ call, field }) => {
        const failure = await failureOf(call());
        expect(failure.code).toBe(Code.InvalidArgument);
        expect(failure.message.startsWith(`${field}:`)).toBe(true);
      });
    });

    describe('limits and failures', () => {
      it('answers a message larger than TALLY_MAX_MESSAGE_BYTES with RESOURCE_EXHAUSTED', async () => {
        const failure = await failureOf(client.call(issue, { subject: 'a', claims: { padding: 'x'.repeat(2 * MAX_MESSAGE_BYTES) } }));
        expect(failure.code).toBe(Code.ResourceExhausted);
      });

      it('answers DEADLINE_EXCEEDED when the client\'s deadline is shorter than the store takes', async () => {
        slowStore.hold();
        try {
          const failure = await failureOf(client.call(issue, { subject: 'slow' }, { timeoutMs: 100 }));
          expect(failure.code).toBe(Code.DeadlineExceeded);
        } finally {
          slowStore.release();
        }
      });

      it('answers UNAVAILABLE, never active, while the store is down', async () => {
        const issued = await client.call(issue, { subject: 'down' });
        slowStore.setUnavailable(true);
        try {
          const failure = await failureOf(client.call(introspect, { token: issued.token }));
          expect(failure.code).toBe(Code.Unavailable);
          expect(failure.message).not.toContain(issued.token);
        } finally {
          slowStore.setUnavailable(false);
        }
        expect((await client.call(introspect, { token: issued.token })).active).toBe(true);
      });
    });

    describe('the call log', () => {
      it('logs one line per call with method, protocol, code, duration, peer, caller and token id, never the token', async () => {
        const issued = await client.call(issue, { subject: 'logged' });
        await client.call(introspect, { token: issued.token });
        const lines = (await logsOnce((all) => all.filter((entry) => entry.token_id === issued.tokenId).length >= 2))
          .filter((entry) => entry.token_id === issued.tokenId);
        expect(lines.map((line) => line.method)).toEqual(['tally.v1.TokenService/Issue', 'tally.v1.TokenService/Introspect']);
        for (const line of lines) {
          expect(line).toMatchObject({ protocol: port.protocol, code: 'ok' });
          expect(typeof line.duration_ms).toBe('number');
          expect(line.peer).toMatch(/^127\.0\.0\.1:\d+$/);
          // No callers file: the loopback client is protected mode's local caller.
          expect(line.caller).toBe('local');
        }
        expect(tally.rawLogs()).not.toContain(issued.token);
      });

      // The caller's own x-request-id lets an operator match Tally's line to the caller's logs.
      const lineWith = async (requestId: string) =>
        (await logsOnce((lines) => lines.some((entry) => entry.msg === 'call' && entry.request_id === requestId)))
          .find((entry) => entry.msg === 'call' && entry.request_id === requestId)!;

      it('logs the x-request-id the caller sent', async () => {
        const requestId = `${port.protocol}-req-1`;
        await client.call(listKeys, {}, { headers: { 'x-request-id': requestId } });
        expect(await lineWith(requestId)).toMatchObject({ method: 'tally.v1.TokenService/ListKeys', protocol: port.protocol });
      });

      // One that could forge or bloat log fields is dropped, not cleaned.
      it.each([
        ['with a space', 'a b'],
        ['too long', 'x'.repeat(129)],
        ['with a quote', 'a"b'],
      ])('drops an x-request-id %s', async (_name, requestId) => {
        const marker = `marker-${Math.random()}`;
        await client.call(listKeys, {}, { headers: { 'x-request-id': requestId, 'x-marker': marker } });
        // A well-formed call after it shows the log has caught up.
        await client.call(listKeys, {}, { headers: { 'x-request-id': marker } });
        await lineWith(marker);
        expect(tally.logs().some((entry) => entry.request_id === requestId)).toBe(false);
      });
    });
  });
}
