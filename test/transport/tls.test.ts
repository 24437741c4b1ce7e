// TLS and mutual TLS on both ports of the real process: callers named by a
// client certificate's SPIFFE ID or subject, refusals at the handshake for
// certificates the client CA did not sign or none at all, API keys over TLS,
// and certificates rotated by replacing the files, with no restart.
import { copyFileSync, renameSync } from 'node:fs';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { join, dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { createTestCa, type IssuedCertificate, type TestCa } from '../support/certificates.js';
import { newApiKey, writeCallersFile } from '../support/callers-file.js';
import { eventually } from '../support/eventually.js';
import { createGrpcTestClient, grpcStatusOf } from '../support/grpc-client.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const { issue, introspect } = TokenService.method;

function connectClient(tally: TallyProcess, tls: { ca: Buffer; cert?: Buffer; key?: Buffer }) {
  return createClient(TokenService, createConnectTransport({ baseUrl: tally.httpUrl, httpVersion: '1.1', nodeOptions: { ...tls, agent: false } }));
}

function grpcClient(tally: TallyProcess, ca: Buffer, client?: IssuedCertificate) {
  return createGrpcTestClient(tally.grpcAddress, grpc.credentials.createSsl(ca, client?.key ?? null, client?.cert ?? null));
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** The SHA-256 fingerprint of the certificate a port serves now, or the handshake's error. */
function servedFingerprint(port: number, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...options }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fingerprint);
    });
    socket.once('error', reject);
  });
}

/** Settles how a TLS handshake ended: the client's view of a refusal comes after the handshake in TLS 1.3. */
function handshakeOutcome(port: number, options: ConnectionOptions & { ALPNProtocols: string[] }): Promise<'open' | 'refused'> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ...options });
    socket.once('error', () => resolve('refused'));
    socket.once('close', () => resolve('refused'));
    // A server that accepted the client certificate keeps the connection open and answers.
    socket.once('secureConnect', () => {
      socket.write(options.ALPNProtocols?.[0] === 'h2' ? 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0' : 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      socket.once('data', () => {
        socket.destroy();
        resolve('open');
      });
    });
  });
}

describe('TLS without client certificates', () => {
  let ca: TestCa;
  let tally: TallyProcess;
  let certFile: string;
  let keyFile: string;
  const apiKey = newApiKey();

  beforeAll(async () => {
    ca = createTestCa();
    const served = ca.server();
    // The server reads copies, so the test can replace them as cert-manager would.
    certFile = join(dirname(served.certFile), 'served.crt');
    keyFile = join(dirname(served.keyFile), 'served.key');
    copyFileSync(served.certFile, certFile);
    copyFileSync(served.keyFile, keyFile);
    const callersFile = writeCallersFile([{ name: 'ops', permissions: ['issue', 'introspect', 'revoke', 'keys'], apiKeys: [apiKey] }]);
    tally = await startTally({
      env: { TALLY_CALLERS_FILE: callersFile, TALLY_TLS_CERT_FILE: certFile, TALLY_TLS_KEY_FILE: keyFile },
      tls: { ca: ca.cert },
    });
  });
  afterAll(async () => {
    await tally?.stop();
  });

  it('logs that both ports serve TLS', () => {
    expect(tally.logs().find((line) => line.msg === 'listening')).toMatchObject({ security: 'TLS' });
  });

  it('serves an API-key caller over TLS on the gRPC port', async () => {
    const client = grpcClient(tally, ca.cert);
    try {
      const metadata = { authorization: `Bearer ${apiKey}` };
      const issued = await client.unary(issue, { subject: 'alice' }, { metadata });
      expect((await client.unary(introspect, { token: issued.token }, { metadata })).active).toBe(true);
      expect((await grpcStatusOf(client.unary(introspect, { token: issued.token }))).code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
  });

  it('serves an API-key caller over HTTPS with Connect', async () => {
    const client = connectClient(tally, { ca: ca.cert });
    const headers = { authorization: `Bearer ${apiKey}` };
    const issued = await client.issue({ subject: 'bob' }, { headers });
    expect((await client.introspect({ token: issued.token }, { headers })).active).toBe(true);
    const refused = await client.introspect({ token: issued.token }).catch((error: unknown) => ConnectError.from(error));
    expect(refused).toBeInstanceOf(ConnectError);
    expect((refused as ConnectError).code).toBe(Code.Unauthenticated);
  });

  it('refuses plaintext on the TLS ports', async () => {
    const response = await fetch(tally.httpUrl.replace('https:', 'http:') + '/healthz').catch((error: unknown) => error);
    expect(response).toBeInstanceOf(Error);
  });

  it('serves a replaced certificate on both ports without a restart', async () => {
    const grpcPort = portOf(tally.grpcAddress);
    const httpPort = Number(new URL(tally.httpUrl).port);
    const before = await servedFingerprint(grpcPort, { ca: ca.cert, ALPNProtocols: ['h2'] });
    expect(await servedFingerprint(httpPort, { ca: ca.cert })).toBe(before);

    const next = ca.server('tally-rotated');
    // As a Secret mount changes: each file swapped in whole, the key first.
    copyFileSync(next.keyFile, `${keyFile}.next`);
    renameSync(`${keyFile}.next`, keyFile);
    copyFileSync(next.certFile, `${certFile}.next`);
    renameSync(`${certFile}.next`, certFile);

    const after = await eventually(async () => {
      const fingerprint = await servedFingerprint(grpcPort, { ca: ca.cert, ALPNProtocols: ['h2'] });
      if (fingerprint === before) throw new Error('the gRPC port still serves the old certificate');
      return fingerprint;
    }, 15_000);
    await eventually(async () => {
      if ((await servedFingerprint(httpPort, { ca: ca.cert })) !== after) throw new Error('the HTTP port does not serve the new certificate');
    }, 15_000);
    expect(after).not.toBe(before);
    expect(tally.logs().some((line) => line.msg === 'TLS certificate files reloaded; new connections use them')).toBe(true);

    // And calls go on over the new certificate, in the same process.
    const client = grpcClient(tally, ca.cert);
    try {
      const issued = await client.unary(issue, { subject: 'carol' }, { metadata: { authorization: `Bearer ${apiKey}` } });
      expect(issued.token).not.toBe('');
    } finally {
      client.close();
    }
    expect(tally.logs().some((line) => String(line.msg).includes('start-up'))).toBe(false);
  });
});

describe('mutual TLS', () => {
  let ca: TestCa;
  let stranger: TestCa;
  let tally: TallyProcess;
  let orders: IssuedCertificate;
  let billing: IssuedCertificate;
  let unknown: IssuedCertificate;
  const opsKey = newApiKey();

  beforeAll(async () => {
    ca = createTestCa();
    stranger = createTestCa('Someone Else CA');
    const served = ca.server();
    orders = ca.client('/O=Tally Tests/CN=orders-workload', 'spiffe://tally.test/ns/shop/sa/orders');
    billing = ca.client('/O=Tally Tests/CN=billing');
    unknown = ca.client('/O=Tally Tests/CN=nobody');
    const callersFile = writeCallersFile([
      { name: 'orders', permissions: ['issue', 'introspect'], tlsIdentity: 'spiffe://tally.test/ns/shop/sa/orders' },
      { name: 'billing', permissions: ['introspect'], tlsIdentity: 'O=Tally Tests,CN=billing' },
      { name: 'ops', permissions: ['issue', 'introspect', 'revoke', 'keys'], apiKeys: [opsKey] },
    ]);
    tally = await startTally({
      env: {
        TALLY_CALLERS_FILE: callersFile,
        TALLY_TLS_CERT_FILE: served.certFile,
        TALLY_TLS_KEY_FILE: served.keyFile,
        TALLY_TLS_CLIENT_CA_FILE: ca.certFile,
      },
      tls: { ca: ca.cert, cert: orders.cert, key: orders.key },
    });
  });
  afterAll(async () => {
    await tally?.stop();
  });

  it('names a caller by the SPIFFE ID of its certificate, on both ports', async () => {
    const client = grpcClient(tally, ca.cert, orders);
    try {
      const issued = await client.unary(issue, { subject: 'alice' });
      expect((await client.unary(introspect, { token: issued.token })).active).toBe(true);
    } finally {
      client.close();
    }
    const connect = connectClient(tally, { ca: ca.cert, cert: orders.cert, key: orders.key });
    const issued = await connect.issue({ subject: 'alice' });
    expect((await connect.introspect({ token: issued.token })).active).toBe(true);
    await eventually(async () => {
      if (!tally.logs().some((line) => line.caller === 'orders')) throw new Error('no call logged for orders');
    }, 5_000);
  });

  it('names a caller by the subject of its certificate, with that caller\'s permissions', async () => {
    const client = grpcClient(tally, ca.cert, billing);
    const connect = connectClient(tally, { ca: ca.cert, cert: billing.cert, key: billing.key });
    try {
      expect((await client.unary(introspect, { token: 'tly_unknown' })).active).toBe(false);
      expect((await connect.introspect({ token: 'tly_unknown' })).active).toBe(false);
      // billing may introspect but not issue: it was recognised, and it is not orders.
      expect((await grpcStatusOf(client.unary(issue, { subject: 'x' }))).code).toBe(grpc.status.PERMISSION_DENIED);
      const refused = await connect.issue({ subject: 'x' }).catch((error: unknown) => ConnectError.from(error));
      expect((refused as ConnectError).code).toBe(Code.PermissionDenied);
    } finally {
      client.close();
    }
    await eventually(async () => {
      if (!tally.logs().some((line) => line.caller === 'billing' && line.code === 'permission_denied')) throw new Error('no refusal logged for billing');
    }, 5_000);
  });

  it('answers UNAUTHENTICATED for a certificate the CA signed that names no caller', async () => {
    const client = grpcClient(tally, ca.cert, unknown);
    try {
      expect((await grpcStatusOf(client.unary(introspect, { token: 'tly_x' }))).code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
    const refused = await connectClient(tally, { ca: ca.cert, cert: unknown.cert, key: unknown.key })
      .introspect({ token: 'tly_x' })
      .catch((error: unknown) => ConnectError.from(error));
    expect((refused as ConnectError).code).toBe(Code.Unauthenticated);
  });

  it.each([
    // One O attribute whose value holds a comma: joined without escaping, it read as O=Tally Tests,CN=billing.
    ['a subject attribute that spells out another subject', '/O=Tally Tests,CN=billing', undefined],
    // A SPIFFE ID comes only from a URI SAN: a common name that looks like one names no one.
    ['a common name that looks like a SPIFFE ID, and no URI SAN', '/CN=spiffe:\\/\\/tally.test\\/ns\\/shop\\/sa\\/orders', undefined],
  ])('does not take %s for a caller', async (_name, subject, uri) => {
    const impostor = ca.client(subject, uri);
    const client = grpcClient(tally, ca.cert, impostor);
    try {
      expect((await grpcStatusOf(client.unary(introspect, { token: 'tly_x' }))).code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
    const refused = await connectClient(tally, { ca: ca.cert, cert: impostor.cert, key: impostor.key })
      .introspect({ token: 'tly_x' })
      .catch((error: unknown) => ConnectError.from(error));
    expect((refused as ConnectError).code).toBe(Code.Unauthenticated);
  });

  it('serves an API key over mutual TLS, whatever the certificate names', async () => {
    const client = grpcClient(tally, ca.cert, unknown);
    try {
      const issued = await client.unary(issue, { subject: 'dave' }, { metadata: { authorization: `Bearer ${opsKey}` } });
      expect(issued.token).not.toBe('');
    } finally {
      client.close();
    }
  });

  const ports = [
    { port: 'gRPC', of: (tally: TallyProcess) => portOf(tally.grpcAddress), alpn: ['h2'] },
    { port: 'HTTP', of: (tally: TallyProcess) => Number(new URL(tally.httpUrl).port), alpn: ['http/1.1'] },
  ];

  it.each(ports)('refuses at the handshake, on the $port port, a client with no certificate or one another CA signed', async ({ of, alpn }) => {
    const port = of(tally);
    const outsider = stranger.client('/O=Tally Tests/CN=orders', 'spiffe://tally.test/ns/shop/sa/orders');
    expect(await handshakeOutcome(port, { ca: ca.cert, ALPNProtocols: alpn, cert: orders.cert, key: orders.key })).toBe('open');
    expect(await handshakeOutcome(port, { ca: ca.cert, ALPNProtocols: alpn })).toBe('refused');
    expect(await handshakeOutcome(port, { ca: ca.cert, ALPNProtocols: alpn, cert: outsider.cert, key: outsider.key })).toBe('refused');
  });

  it('refuses gRPC and Connect calls from a client without a certificate', async () => {
    const callsLogged = () => tally.logs().filter((line) => line.method === 'tally.v1.TokenService/Introspect').length;
    const before = callsLogged();
    const client = grpcClient(tally, ca.cert);
    try {
      const status = await grpcStatusOf(client.unary(introspect, { token: 'tly_x' }, { metadata: { authorization: `Bearer ${opsKey}` }, deadlineMs: 5_000 }));
      expect(status.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      client.close();
    }
    const refused = await connectClient(tally, { ca: ca.cert })
      .introspect({ token: 'tly_x' }, { headers: { authorization: `Bearer ${opsKey}` } })
      .then(() => 'answered', () => 'failed');
    // The connection is cut at the handshake: no call reaches a handler, so no call is logged.
    expect(refused).toBe('failed');
    expect(callsLogged()).toBe(before);
  });
});
