import { Code, ConnectError, createClient, type Client, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyState, TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { eventually } from '../support/eventually.js';
import { createControllableStore, type ControllableStore } from '../support/controllable-store.js';
import { startInProcessTally, TEST_ISSUER, type InProcessTally } from '../support/in-process-tally.js';

async function connectErrorOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error('the call succeeded but was expected to fail');
}

const TRANSPORTS: { name: string; make: (baseUrl: string) => Transport }[] = [
  { name: 'Connect JSON', make: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: '1.1', useBinaryFormat: false }) },
  { name: 'Connect binary', make: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: '1.1', useBinaryFormat: true }) },
  { name: 'gRPC-Web', make: (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: '1.1' }) },
];

describe.each(TRANSPORTS)('TokenService over $name on the HTTP port', ({ name, make }) => {
  let tally: InProcessTally;
  let client: Client<typeof TokenService>;
  let slowStore: ControllableStore;

  beforeAll(async () => {
    slowStore = createControllableStore();
    tally = await startInProcessTally({ store: slowStore.store, maxMessageBytes: 16 * 1024 });
    client = createClient(TokenService, make(tally.httpUrl));
  });
  afterAll(async () => {
    slowStore.release();
    await tally.close();
  });

  it('walks issue → introspect active → revoke → introspect inactive, opaque and JWT', async () => {
    for (const format of [TokenFormat.OPAQUE, TokenFormat.JWT]) {
      const issued = await client.issue({
        subject: 'alice',
        audience: ['orders'],
        scopes: ['orders:read'],
        format,
        claims: { tenant: 'acme' },
        ttl: { seconds: 120n },
      });
      expect(issued.format).toBe(format);
      const active = await client.introspect({ token: issued.token, requiredScopes: ['orders:read'] });
      expect(active).toMatchObject({
        active: true,
        tokenId: issued.tokenId,
        subject: 'alice',
        format,
        issuer: TEST_ISSUER,
        claims: { tenant: 'acme' },
      });
      await client.revoke({ target: { case: 'token', value: issued.token } });
      const inactive = await client.introspect({ token: issued.token });
      expect(inactive.active).toBe(false);
      expect(inactive.tokenId).toBe('');
      expect(inactive.subject).toBe('');
    }
  });

  it('rotates and lists keys', async () => {
    const rotated = await client.rotateKeys({});
    const listed = await client.listKeys({});
    expect(listed.keys.filter((key) => key.state === KeyState.ACTIVE)).toHaveLength(1);
    expect(listed.keys.map((key) => key.kid).sort()).toEqual(rotated.keys.map((key) => key.kid).sort());
  });

  it.each([
    { field: 'subject', call: () => client.issue({}) },
    { field: 'ttl', call: () => client.issue({ subject: 'a', ttl: { seconds: -1n } }) },
    { field: 'target', call: () => client.revoke({}) },
    { field: 'algorithm', call: () => client.rotateKeys({ algorithm: 'none' }) },
  ])('answers INVALID_ARGUMENT naming $field', async ({ field, call }) => {
    const error = await connectErrorOf(call());
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage.startsWith(`${field}:`)).toBe(true);
  });

  it('answers a message larger than the limit with RESOURCE_EXHAUSTED', async () => {
    const error = await connectErrorOf(client.issue({ subject: 'a', claims: { padding: 'x'.repeat(32 * 1024) } }));
    expect(error.code).toBe(Code.ResourceExhausted);
  });

  it('answers DEADLINE_EXCEEDED when the store is slower than the timeout', async () => {
    slowStore.hold();
    try {
      const error = await connectErrorOf(client.issue({ subject: 'slow' }, { timeoutMs: 150 }));
      expect(error.code).toBe(Code.DeadlineExceeded);
    } finally {
      slowStore.release();
    }
  });

  it('answers UNAVAILABLE, never active, while the store is down', async () => {
    const issued = await client.issue({ subject: 'down' });
    slowStore.setUnavailable(true);
    try {
      const error = await connectErrorOf(client.introspect({ token: issued.token }));
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).not.toContain(issued.token);
    } finally {
      slowStore.setUnavailable(false);
    }
    expect((await client.introspect({ token: issued.token })).active).toBe(true);
  });

  it('logs the call with its protocol and token id, never the token', async () => {
    const issued = await client.issue({ subject: 'logged' });
    // The line is written when the response has gone, which may be just after the client has it.
    await eventually(async () => {
      const line = tally.logs().find((entry) => entry.token_id === issued.tokenId);
      expect(line).toMatchObject({
        method: 'tally.v1.TokenService/Issue',
        protocol: name === 'gRPC-Web' ? 'grpc-web' : 'connect',
        code: 'ok',
      });
    }, 2_000);
    expect(tally.rawLogs()).not.toContain(issued.token);
  });
});

describe('Introspect on the HTTP port', () => {
  it('refuses Connect GET, which would carry the token in the URL', async () => {
    const tally = await startInProcessTally();
    try {
      const message = encodeURIComponent(JSON.stringify({ token: 'tly_example' }));
      const response = await fetch(`${tally.httpUrl}/tally.v1.TokenService/Introspect?connect=v1&encoding=json&message=${message}`);
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('POST');
      // ListKeys carries no token: GET stays available, and cacheable.
      const keys = await fetch(`${tally.httpUrl}/tally.v1.TokenService/ListKeys?connect=v1&encoding=json&message=%7B%7D`);
      expect(keys.status).toBe(200);
    } finally {
      await tally.close();
    }
  });
});

describe('Issue claims every protocol can answer', () => {
  it('refuses a claim of 1e400 sent as Connect JSON with INVALID_ARGUMENT on claims, before any token exists', async () => {
    const tally = await startInProcessTally();
    try {
      for (const claims of ['{"n": 1e400}', '{"list": [1, -1e400]}', '{"Sub": "mallory"}', '{"__proto__": {"admin": true}}']) {
        const response = await fetch(`${tally.httpUrl}/tally.v1.TokenService/Issue`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: `{"subject": "a", "claims": ${claims}}`,
        });
        const body = (await response.json()) as { code?: string; message?: string };
        expect(response.status, claims).toBe(400);
        expect(body.code).toBe('invalid_argument');
        expect(body.message?.startsWith('claims:'), claims).toBe(true);
      }
    } finally {
      await tally.close();
    }
  });
});
