// Who may call, against the real process on both ports: protected mode, API
// keys (both of a caller's keys), permissions, audiences, the scan limit,
// the proto's validation rules, refusals logged by caller name and never with
// a key, and a callers file re-read when it changes.
import { request as httpRequest } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { newApiKey, writeCallersFile, type TestCaller } from '../support/callers-file.js';
import { eventually } from '../support/eventually.js';
import { createGrpcTestClient, grpcStatusOf } from '../support/grpc-client.js';
import { startRawGrpcCall } from '../support/raw-grpc.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const { issue, introspect, revoke, listKeys } = TokenService.method;

async function connectCodeOf(call: Promise<unknown>): Promise<Code> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error).code;
  }
  throw new Error('the call succeeded but was expected to fail');
}

/** Both ports, as one caller: the same request through grpc-js and Connect JSON. */
function clientsFor(tally: TallyProcess, apiKey?: string) {
  const grpcClient = createGrpcTestClient(tally.grpcAddress);
  const connect = createClient(TokenService, createConnectTransport({ baseUrl: tally.httpUrl, httpVersion: '1.1' }));
  const metadata: Record<string, string> = apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` };
  return { grpc: grpcClient, connect, metadata, headers: metadata, close: () => grpcClient.close() };
}

describe('protected mode', () => {
  it('with no callers serves loopback clients, and says how to configure callers', async () => {
    const tally = await startTally();
    const { grpc: client, connect, close } = clientsFor(tally);
    try {
      const issued = await client.unary(issue, { subject: 'alice' });
      expect((await connect.introspect({ token: issued.token })).active).toBe(true);
      const warning = tally.logs().find((line) => String(line.msg).includes('protected mode'));
      expect(String(warning?.msg)).toContain('TALLY_CALLERS_FILE');
      expect(String(warning?.msg)).toContain('TALLY_PROTECTED_MODE=no');
    } finally {
      close();
      await tally.stop();
    }
  });

  it('TALLY_PROTECTED_MODE=no serves everyone, and warns that it does', async () => {
    const tally = await startTally({ env: { TALLY_PROTECTED_MODE: 'no' } });
    const { grpc: client, close } = clientsFor(tally);
    try {
      expect((await client.unary(issue, { subject: 'alice' })).token).not.toBe('');
      expect(tally.logs().some((line) => String(line.msg).includes('TALLY_PROTECTED_MODE=no: every client'))).toBe(true);
    } finally {
      close();
      await tally.stop();
    }
  });
});

describe('callers from the callers file', () => {
  const opsKeys = [newApiKey(), newApiKey()];
  const readerKey = newApiKey();
  const ordersKey = newApiKey();
  const laterKey = newApiKey();
  const strangerKey = newApiKey();
  const scannerKey = newApiKey();
  const callers: TestCaller[] = [
    { name: 'ops', permissions: ['issue', 'introspect', 'revoke', 'keys'], apiKeys: opsKeys },
    { name: 'reader', permissions: ['introspect'], apiKeys: [readerKey] },
    { name: 'scanner', permissions: ['introspect'], apiKeys: [scannerKey] },
    { name: 'orders', permissions: ['issue', 'introspect', 'revoke'], audiences: ['orders'], apiKeys: [ordersKey] },
  ];
  let callersFile: string;
  let tally: TallyProcess;

  beforeAll(async () => {
    callersFile = writeCallersFile(callers);
    tally = await startTally({ env: { TALLY_CALLERS_FILE: callersFile, TALLY_SCAN_LIMIT_RATE: '1', TALLY_SCAN_LIMIT_BURST: '5' } });
  });
  afterAll(async () => {
    await tally?.stop();
  });

  it('serves a caller by either of its two keys, on both ports', async () => {
    for (const key of opsKeys) {
      const { grpc: client, connect, metadata, headers, close } = clientsFor(tally, key);
      try {
        const issued = await client.unary(issue, { subject: 'alice' }, { metadata });
        expect((await connect.introspect({ token: issued.token }, { headers })).active).toBe(true);
      } finally {
        close();
      }
    }
  });

  it('answers UNAUTHENTICATED (401) for an unknown key, a malformed header or none, even from loopback', async () => {
    for (const authorization of [`Bearer ${strangerKey}`, `Basic ${strangerKey}`, undefined]) {
      const metadata: Record<string, string> = authorization === undefined ? {} : { authorization };
      const { grpc: client, connect, close } = clientsFor(tally);
      try {
        expect((await grpcStatusOf(client.unary(listKeys, {}, { metadata }))).code).toBe(grpc.status.UNAUTHENTICATED);
        expect(await connectCodeOf(connect.listKeys({}, { headers: metadata }))).toBe(Code.Unauthenticated);
      } finally {
        close();
      }
      const response = await fetch(`${tally.httpUrl}/tally.v1.TokenService/ListKeys`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...metadata },
        body: '{}',
      });
      expect(response.status).toBe(401);
    }
  });

  it('answers PERMISSION_DENIED (403) for a call the caller has no permission for', async () => {
    const { grpc: client, connect, metadata, headers, close } = clientsFor(tally, readerKey);
    try {
      expect((await grpcStatusOf(client.unary(issue, { subject: 'x' }, { metadata }))).code).toBe(grpc.status.PERMISSION_DENIED);
      expect(await connectCodeOf(connect.revoke({ target: { case: 'subject', value: 'x' } }, { headers }))).toBe(Code.PermissionDenied);
      expect((await client.unary(introspect, { token: 'tly_nothing' }, { metadata })).active).toBe(false);
    } finally {
      close();
    }
    const response = await fetch(`${tally.httpUrl}/tally.v1.TokenService/RotateKeys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${readerKey}` },
      body: '{}',
    });
    expect(response.status).toBe(403);
  });

  it('logs refusals with the caller\'s name and never with a key', async () => {
    const refused = await eventually(async () => {
      const lines = tally.logs().filter((line) => line.code === 'permission_denied');
      if (lines.length < 3) throw new Error('the refusals are not all logged yet');
      return lines;
    }, 5_000);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((line) => line.caller === 'reader')).toBe(true);
    const output = tally.stdout() + tally.stderr();
    for (const key of [...opsKeys, readerKey, ordersKey, strangerKey, scannerKey]) expect(output).not.toContain(key);
  });

  it('limits an audience-bound caller to tokens of its audiences, on both ports', async () => {
    const ops = clientsFor(tally, opsKeys[0]);
    const orders = clientsFor(tally, ordersKey);
    try {
      const foreign = await ops.grpc.unary(issue, { subject: 'alice', audience: ['billing'] }, { metadata: ops.metadata });
      const own = await orders.grpc.unary(issue, { subject: 'alice' }, { metadata: orders.metadata });
      // A foreign token looks exactly like an unknown one.
      expect(await orders.grpc.unary(introspect, { token: foreign.token }, { metadata: orders.metadata })).toMatchObject({ active: false, subject: '' });
      expect((await orders.connect.introspect({ token: foreign.token }, { headers: orders.headers })).active).toBe(false);
      const mine = await orders.connect.introspect({ token: own.token }, { headers: orders.headers });
      expect(mine).toMatchObject({ active: true, audience: ['orders'] });
      // It may not mint tokens for others, nor revoke beyond single tokens of its own.
      expect((await grpcStatusOf(orders.grpc.unary(issue, { subject: 'a', audience: ['billing'] }, { metadata: orders.metadata }))).code).toBe(grpc.status.PERMISSION_DENIED);
      expect(await connectCodeOf(orders.connect.revoke({ target: { case: 'subject', value: 'alice' } }, { headers: orders.headers }))).toBe(Code.PermissionDenied);
      await orders.grpc.unary(revoke, { target: { case: 'token', value: foreign.token } }, { metadata: orders.metadata });
      expect((await ops.connect.introspect({ token: foreign.token }, { headers: ops.headers })).active).toBe(true);
    } finally {
      ops.close();
      orders.close();
    }
  });

  it('answers INVALID_ARGUMENT naming the field from the proto\'s rules, on both ports', async () => {
    const { grpc: client, connect, metadata, headers, close } = clientsFor(tally, opsKeys[0]);
    try {
      const cases = [
        { field: 'scopes[0]', request: { subject: 'a', scopes: ['has space'] } },
        { field: 'audience[1]', request: { subject: 'a', audience: ['ok', ''] } },
        { field: 'subject', request: { subject: 'x'.repeat(257) } },
      ];
      for (const { field, request } of cases) {
        const status = await grpcStatusOf(client.unary(issue, request, { metadata }));
        expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(status.details.startsWith(`${field}:`)).toBe(true);
        const error = await connect.issue(request, { headers }).catch((thrown: unknown) => ConnectError.from(thrown));
        expect((error as ConnectError).code).toBe(Code.InvalidArgument);
        expect((error as ConnectError).rawMessage.startsWith(`${field}:`)).toBe(true);
      }
      const status = await grpcStatusOf(client.unary(revoke, { target: { case: 'tokenId', value: 'not/an/id' } }, { metadata }));
      expect(status.details.startsWith('token_id:')).toBe(true);
    } finally {
      close();
    }
  });

  it('refuses introspection with RESOURCE_EXHAUSTED (429) to a caller scanning for tokens, and only to it', async () => {
    const scanner = clientsFor(tally, scannerKey);
    const bystander = clientsFor(tally, opsKeys[1]);
    try {
      // The bucket holds 5 misses and refills 1 a second, so a slow machine may see one more get through.
      const started = performance.now();
      const codes: number[] = [];
      for (let attempt = 0; attempt < 20 && !codes.includes(grpc.status.RESOURCE_EXHAUSTED); attempt += 1) {
        const forged = `tly_${'A'.repeat(40)}${attempt}`;
        codes.push(await scanner.grpc.unary(introspect, { token: forged }, { metadata: scanner.metadata }).then(() => 0, (error: grpc.ServiceError) => error.code));
      }
      const allowed = codes.indexOf(grpc.status.RESOURCE_EXHAUSTED);
      expect(allowed).toBeGreaterThanOrEqual(5);
      expect(allowed).toBeLessThanOrEqual(5 + Math.ceil((performance.now() - started) / 1000));
      // Log lines reach stdout a moment after the answer.
      await eventually(async () => {
        if (!tally.logs().some((line) => line.caller === 'scanner' && line.code === 'resource_exhausted')) throw new Error('no refusal logged for scanner');
      }, 5_000);
      const statuses: number[] = [];
      for (let attempt = 0; attempt < 3 && !statuses.includes(429); attempt += 1) {
        const response = await fetch(`${tally.httpUrl}/tally.v1.TokenService/Introspect`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${scannerKey}` },
          body: JSON.stringify({ token: 'tly_whatever' }),
        });
        statuses.push(response.status);
      }
      expect(statuses).toContain(429);
      // The RFC 7662 endpoint charges the same budget: no way around it.
      const oauth = await fetch(`${tally.httpUrl}/oauth2/introspect`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${scannerKey}` },
        body: 'token=tly_whatever',
      });
      expect(oauth.status).toBe(429);
      // Logged and counted as the refusal it is, as on the RPC ports (one status table, transport/call/errors.ts).
      await eventually(async () => {
        const line = tally.logs().find((entry) => entry.caller === 'scanner' && entry.method === 'POST /oauth2/introspect');
        if (line === undefined) throw new Error('no RFC 7662 refusal logged for scanner');
        expect(line.code).toBe('resource_exhausted');
      }, 5_000);
      expect((await bystander.connect.introspect({ token: 'tly_other' }, { headers: bystander.headers })).active).toBe(false);
    } finally {
      scanner.close();
      bystander.close();
    }
  });

  it('re-reads the callers file when it changes: a new caller gets in, a removed one is refused', async () => {
    writeCallersFile([...callers.filter((caller) => caller.name !== 'reader'), { name: 'later', permissions: ['keys'], apiKeys: [laterKey] }], callersFile);
    const later = clientsFor(tally, laterKey);
    const reader = clientsFor(tally, readerKey);
    try {
      await eventually(async () => {
        await later.grpc.unary(listKeys, {}, { metadata: later.metadata });
      }, 10_000);
      expect((await later.connect.listKeys({}, { headers: later.headers })).keys.length).toBeGreaterThan(0);
      expect((await grpcStatusOf(reader.grpc.unary(introspect, { token: 'tly_x' }, { metadata: reader.metadata }))).code).toBe(grpc.status.UNAUTHENTICATED);
      expect(tally.logs().some((line) => line.msg === 'callers file reloaded')).toBe(true);
    } finally {
      later.close();
      reader.close();
    }
  });
});

describe('a callers file emptied while Tally runs', () => {
  const opsKey = newApiKey();

  it('is refused: the previous callers stay, loopback clients without a key stay refused, and the log says why', async () => {
    const callersFile = writeCallersFile([{ name: 'ops', permissions: ['issue', 'introspect', 'revoke', 'keys'], apiKeys: [opsKey] }]);
    const tally = await startTally({ env: { TALLY_CALLERS_FILE: callersFile } });
    const ops = clientsFor(tally, opsKey);
    const anonymous = clientsFor(tally);
    try {
      writeCallersFile([], callersFile);
      await eventually(async () => {
        const line = tally.logs().find((entry) => entry.level === 'error' && String(entry.msg).includes('callers file'));
        expect(JSON.stringify(line)).toContain('TALLY_CALLERS_ALLOW_EMPTY');
      }, 10_000);
      expect((await ops.grpc.unary(issue, { subject: 'still-ops' }, { metadata: ops.metadata })).token).not.toBe('');
      expect((await grpcStatusOf(anonymous.grpc.unary(issue, { subject: 'anyone' }))).code).toBe(grpc.status.UNAUTHENTICATED);
      expect(await connectCodeOf(anonymous.connect.issue({ subject: 'anyone' }))).toBe(Code.Unauthenticated);
    } finally {
      ops.close();
      anonymous.close();
      await tally.stop();
    }
  });

  it('is taken with TALLY_CALLERS_ALLOW_EMPTY=yes, and then a presented key is still refused', async () => {
    const callersFile = writeCallersFile([{ name: 'ops', permissions: ['issue', 'introspect', 'revoke', 'keys'], apiKeys: [opsKey] }]);
    const tally = await startTally({ env: { TALLY_CALLERS_FILE: callersFile, TALLY_CALLERS_ALLOW_EMPTY: 'yes' } });
    const ops = clientsFor(tally, opsKey);
    const anonymous = clientsFor(tally);
    try {
      writeCallersFile([], callersFile);
      // Protected mode now decides: the loopback client without a key is served...
      await eventually(async () => {
        await anonymous.grpc.unary(issue, { subject: 'local' });
      }, 10_000);
      // ...and a key, which no caller has any more, is refused rather than ignored.
      expect((await grpcStatusOf(ops.grpc.unary(issue, { subject: 'was-ops' }, { metadata: ops.metadata }))).code).toBe(grpc.status.UNAUTHENTICATED);
      expect(await connectCodeOf(ops.connect.issue({ subject: 'was-ops' }, { headers: ops.headers }))).toBe(Code.Unauthenticated);
    } finally {
      ops.close();
      anonymous.close();
      await tally.stop();
    }
  });
});

describe('protected mode and the Host a client names', () => {
  let tally: TallyProcess;
  beforeAll(async () => {
    tally = await startTally();
  });
  afterAll(async () => {
    await tally?.stop();
  });

  it('refuses a loopback client naming another host (DNS rebinding) on both ports, and serves one naming localhost', async () => {
    const httpPort = Number(new URL(tally.httpUrl).port);
    const rebound = await httpExchange(httpPort, 'attacker.example');
    expect(rebound.status).toBe(401);
    expect((await httpExchange(httpPort, `localhost:${httpPort}`)).status).toBe(200);

    const refused = await grpcExchange(tally.grpcAddress, 'attacker.example:50051');
    expect(refused).toBe(grpc.status.UNAUTHENTICATED);
    expect(await grpcExchange(tally.grpcAddress, tally.grpcAddress)).toBe(grpc.status.OK);
  });

  it('refuses a wrong key from loopback, where no key at all would be served', async () => {
    const { grpc: client, connect, close } = clientsFor(tally, 'not-a-key');
    try {
      expect((await grpcStatusOf(client.unary(listKeys, {}, { metadata: { authorization: 'Bearer not-a-key' } }))).code).toBe(grpc.status.UNAUTHENTICATED);
      expect(await connectCodeOf(connect.listKeys({}, { headers: { authorization: 'Bearer not-a-key' } }))).toBe(Code.Unauthenticated);
    } finally {
      close();
    }
  });
});

/** ListKeys over Connect JSON with the Host header given (fetch will not send another Host). */
function httpExchange(port: number, host: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: '127.0.0.1', port, method: 'POST', path: '/tally.v1.TokenService/ListKeys', headers: { host, 'content-type': 'application/json' }, agent: false },
      (response) => {
        response.resume();
        resolve({ status: response.statusCode ?? 0 });
      },
    );
    request.on('error', reject);
    request.end('{}');
  });
}

/** ListKeys over raw HTTP/2 gRPC with the :authority given: the grpc-status. */
async function grpcExchange(address: string, authority: string): Promise<number> {
  const call = startRawGrpcCall(address, '/tally.v1.TokenService/ListKeys', { [':authority']: authority });
  call.send(new Uint8Array(0));
  return (await call.result).status;
}
