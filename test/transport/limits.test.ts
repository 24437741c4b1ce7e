// What a client with no credential can hold, against the real process: on
// the gRPC port a call is refused from its metadata, before its message is
// read; connections, streams per connection, idle time and age are bounded;
// on the HTTP port a slow request meets its timeouts; both ports cap their
// connections. Driven with raw HTTP/2 and plain sockets, as an attacker would.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { openSession, openSocket, unfinishedCall, within } from '../support/held-connections.js';
import { newApiKey, writeCallersFile } from '../support/callers-file.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const readerKey = newApiKey();
const issuerKey = newApiKey();

describe('limits before any credential is checked', () => {
  let tally: TallyProcess;
  const maxConnections = 6;

  beforeAll(async () => {
    const callersFile = writeCallersFile([
      { name: 'reader', permissions: ['introspect'], apiKeys: [readerKey] },
      { name: 'issuer', permissions: ['issue'], apiKeys: [issuerKey] },
    ]);
    tally = await startTally({
      env: {
        TALLY_CALLERS_FILE: callersFile,
        TALLY_MAX_CONNECTIONS: String(maxConnections),
        TALLY_GRPC_MAX_CONCURRENT_STREAMS: '7',
        TALLY_HTTP_HEADERS_TIMEOUT: '500ms',
        TALLY_HTTP_REQUEST_TIMEOUT: '1s',
      },
    });
  });
  afterAll(async () => {
    await tally?.stop();
  });

  it.each([
    ['no credential', {}, grpc.status.UNAUTHENTICATED],
    ['a wrong API key', { authorization: 'Bearer not-a-key' }, grpc.status.UNAUTHENTICATED],
    ['a key without the permission', { authorization: `Bearer ${readerKey}` }, grpc.status.PERMISSION_DENIED],
  ])('refuses a gRPC call with %s from its metadata, while its message is still unfinished', async (_name, headers, code) => {
    const session = openSession(tally.grpcAddress);
    try {
      const { closed } = unfinishedCall(session, '/tally.v1.TokenService/Issue', headers);
      const outcome = await within(closed, 3_000, 'an answer to the unfinished call');
      expect(outcome.status).toBe(code);
    } finally {
      session.destroy();
    }
  });

  it('logs and counts a refusal made before the message, under the caller\'s name when known', async () => {
    const session = openSession(tally.grpcAddress);
    try {
      await unfinishedCall(session, '/tally.v1.TokenService/Issue', { authorization: `Bearer ${readerKey}`, 'x-request-id': 'early-refusal' }).closed;
    } finally {
      session.destroy();
    }
    const line = await eventually(async () => {
      const found = tally.logs().find((entry) => entry.request_id === 'early-refusal');
      if (found === undefined) throw new Error('no line yet');
      return found;
    }, 2_000);
    expect(line).toMatchObject({ method: 'tally.v1.TokenService/Issue', protocol: 'grpc', code: 'permission_denied', caller: 'reader' });
    const metrics = await (await fetch(`${tally.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/tally_calls_total\{method="tally.v1.TokenService\/Issue",protocol="grpc",code="permission_denied"\} [1-9]/);
  });

  it('still serves a caller with a good key, and health checks with none', async () => {
    const client = new grpc.Client(tally.grpcAddress, grpc.credentials.createInsecure());
    try {
      const unary = (path: string, body: Buffer, metadata = new grpc.Metadata()) =>
        new Promise<Buffer>((resolve, reject) =>
          client.makeUnaryRequest(path, (bytes: Buffer) => bytes, (bytes: Buffer) => bytes, body, metadata, (error, value) => (error ? reject(error) : resolve(value!))),
        );
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${issuerKey}`);
      // IssueRequest { subject: "a" }
      await expect(unary('/tally.v1.TokenService/Issue', Buffer.from([0x0a, 0x01, 0x61]), metadata)).resolves.toBeInstanceOf(Buffer);
      await expect(unary('/grpc.health.v1.Health/Check', Buffer.alloc(0))).resolves.toBeInstanceOf(Buffer);
    } finally {
      client.close();
    }
  });

  it('advertises its bound on concurrent streams per gRPC connection (SETTINGS_MAX_CONCURRENT_STREAMS)', async () => {
    const session = openSession(tally.grpcAddress);
    try {
      await within(new Promise<void>((resolve) => session.once('remoteSettings', () => resolve())), 3_000, 'SETTINGS');
      expect(session.remoteSettings.maxConcurrentStreams).toBe(7);
    } finally {
      session.destroy();
    }
  });

  it('closes a new connection past TALLY_MAX_CONNECTIONS on both ports, and takes new ones once others close', async () => {
    const ports = { grpc: Number(tally.grpcAddress.split(':')[1]), http: Number(new URL(tally.httpUrl).port) };
    for (const [name, port] of Object.entries(ports)) {
      const sockets = Array.from({ length: maxConnections + 3 }, () => openSocket(port));
      try {
        // The server keeps at most maxConnections of them; every one past it is closed at once.
        await eventually(async () => {
          expect(sockets.filter((socket) => socket.closedByServer()).length).toBeGreaterThanOrEqual(3);
        }, 3_000);
        expect(sockets.filter((socket) => !socket.closedByServer()).length).toBeLessThanOrEqual(maxConnections);
        // Said once in a while, not once per connection.
        await eventually(async () => {
          const warnings = tally.logs().filter((line) => line.msg === 'TALLY_MAX_CONNECTIONS reached: new connections are being closed' && line.port === name);
          expect(warnings).toHaveLength(1);
        }, 2_000);
      } finally {
        for (const { socket } of sockets) socket.destroy();
      }
      // The cap counts open connections: with those gone, a client is served again.
      await eventually(async () => {
        expect((await fetch(`${tally.httpUrl}/healthz`)).status).toBe(200);
      }, 3_000);
    }
  });

  it('answers 408 and closes an HTTP request whose body stops coming (TALLY_HTTP_REQUEST_TIMEOUT)', async () => {
    const port = Number(new URL(tally.httpUrl).port);
    const slow = openSocket(port, 'POST /tally.v1.TokenService/Introspect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"token": "');
    try {
      await eventually(async () => expect(slow.closedByServer()).toBe(true), 4_000);
      expect(slow.received()).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      slow.socket.destroy();
    }
  });

  it('closes an HTTP connection whose headers stop coming (TALLY_HTTP_HEADERS_TIMEOUT)', async () => {
    const port = Number(new URL(tally.httpUrl).port);
    const slow = openSocket(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    try {
      await eventually(async () => expect(slow.closedByServer()).toBe(true), 3_000);
    } finally {
      slow.socket.destroy();
    }
  });
});

describe('gRPC connection idle time and age', () => {
  let tally: TallyProcess;

  beforeAll(async () => {
    tally = await startTally({
      env: {
        TALLY_GRPC_MAX_CONNECTION_IDLE: '500ms',
        TALLY_GRPC_MAX_CONNECTION_AGE: '1s',
        TALLY_GRPC_MAX_CONNECTION_AGE_GRACE: '500ms',
      },
    });
  });
  afterAll(async () => {
    await tally?.stop();
  });

  it('closes a gRPC connection that has no call in flight (TALLY_GRPC_MAX_CONNECTION_IDLE)', async () => {
    const session = openSession(tally.grpcAddress);
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    try {
      await within(goaway, 4_000, 'GOAWAY on an idle connection');
    } finally {
      session.destroy();
    }
  });

  it('closes a plain TCP connection that never speaks HTTP/2', async () => {
    const silent = openSocket(Number(tally.grpcAddress.split(':')[1]));
    try {
      await eventually(async () => expect(silent.closedByServer()).toBe(true), 4_000);
    } finally {
      silent.socket.destroy();
    }
  });

  it('ends a connection past its age (plus grace) even while a call on it never finishes', async () => {
    const session = openSession(tally.grpcAddress);
    try {
      // Protected mode serves this loopback client, so the call gets past the guard and waits for its message.
      const { closed } = unfinishedCall(session, '/tally.v1.TokenService/Issue');
      await within(closed, 5_000, 'the end of a call on an aged connection');
      await within(new Promise<void>((resolve) => (session.closed ? resolve() : session.once('close', () => resolve()))), 3_000, 'the connection closing');
    } finally {
      session.destroy();
    }
  });
});
