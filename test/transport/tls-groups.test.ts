// Post-quantum key exchange on both TLS ports of the real process: a client
// that offers X25519MLKEM768 gets it, a classical client is still served by
// default, TALLY_TLS_GROUPS=X25519MLKEM768 refuses a client that offers only
// X25519 (and the log names the setting), with and without client
// certificates; the negotiated group is read by a real TLS client, and the
// server counts handshakes per group in its metrics.
import { get as httpsGet } from 'node:https';
import { connect as tlsConnect, type ConnectionOptions, type EphemeralKeyInfo } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { createTestCa, type IssuedCertificate, type TestCa } from '../support/certificates.js';
import { newApiKey, writeCallersFile } from '../support/callers-file.js';
import { eventually } from '../support/eventually.js';
import { createGrpcTestClient } from '../support/grpc-client.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const { issue, introspect } = TokenService.method;

type Port = 'grpc' | 'http';

function portOf(tally: TallyProcess, port: Port): number {
  return port === 'grpc' ? Number(tally.grpcAddress.slice(tally.grpcAddress.lastIndexOf(':') + 1)) : Number(new URL(tally.httpUrl).port);
}

/** The key exchange a real TLS client negotiated with a port, or 'refused'. */
function negotiate(tally: TallyProcess, port: Port, options: ConnectionOptions): Promise<EphemeralKeyInfo | 'refused'> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: portOf(tally, port),
      servername: 'localhost',
      ALPNProtocols: port === 'grpc' ? ['h2'] : ['http/1.1'],
      ...options,
    });
    socket.once('secureConnect', () => {
      const info = socket.getEphemeralKeyInfo() as EphemeralKeyInfo;
      // Wait for the server's first answer: in TLS 1.3 its side of the handshake ends after the client's.
      socket.write(port === 'grpc' ? 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0' : 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
      socket.once('data', () => {
        socket.destroy();
        resolve(info);
      });
    });
    socket.once('error', () => resolve('refused'));
  });
}

function metricsText(tally: TallyProcess, tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<string> {
  return new Promise((resolve, reject) => {
    httpsGet(`${tally.httpUrl}/metrics`, { ...tls, agent: false }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

function counter(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((entry) => entry.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function introspectsOverGrpc(tally: TallyProcess, credentials: grpc.ChannelCredentials, metadata: Record<string, string> = {}): Promise<boolean> {
  const client = createGrpcTestClient(tally.grpcAddress, credentials);
  try {
    const issued = await client.unary(issue, { subject: 'alice' }, { metadata });
    return (await client.unary(introspect, { token: issued.token }, { metadata })).active;
  } finally {
    client.close();
  }
}

const PORTS: Port[] = ['grpc', 'http'];

describe('TLS with OpenSSL\'s default groups', () => {
  let ca: TestCa;
  let tally: TallyProcess;
  const apiKey = newApiKey();

  beforeAll(async () => {
    ca = createTestCa();
    const served = ca.server();
    tally = await startTally({
      env: {
        TALLY_CALLERS_FILE: writeCallersFile([{ name: 'ops', permissions: ['issue', 'introspect'], apiKeys: [apiKey] }]),
        TALLY_TLS_CERT_FILE: served.certFile,
        TALLY_TLS_KEY_FILE: served.keyFile,
      },
      tls: { ca: ca.cert },
    });
  });
  afterAll(async () => {
    await tally?.stop();
  });

  it.each(PORTS)('gives a client that offers X25519MLKEM768 the hybrid post-quantum key exchange on the %s port', async (port) => {
    expect(await negotiate(tally, port, { ca: ca.cert })).toMatchObject({ type: 'TLSGroup', name: 'X25519MLKEM768' });
  });

  it.each(PORTS)('still serves a client that offers only classical X25519 on the %s port', async (port) => {
    expect(await negotiate(tally, port, { ca: ca.cert, ecdhCurve: 'X25519' })).toMatchObject({ name: 'X25519' });
  });

  it('serves a grpc-js client over it', async () => {
    expect(await introspectsOverGrpc(tally, grpc.credentials.createSsl(ca.cert), { authorization: `Bearer ${apiKey}` })).toBe(true);
  });

  it('counts handshakes per port and negotiated group', async () => {
    const before = await metricsText(tally, { ca: ca.cert });
    await negotiate(tally, 'grpc', { ca: ca.cert, ecdhCurve: 'X25519' });
    await negotiate(tally, 'grpc', { ca: ca.cert });
    await negotiate(tally, 'http', { ca: ca.cert, ecdhCurve: 'P-256' });
    const after = await metricsText(tally, { ca: ca.cert });
    const moved = (labels: string) => counter(after, 'tally_tls_handshakes_total', labels) - counter(before, 'tally_tls_handshakes_total', labels);
    expect(moved('port="grpc",group="X25519"')).toBe(1);
    expect(moved('port="grpc",group="X25519MLKEM768"')).toBe(1);
    expect(moved('port="http",group="secp256r1"')).toBe(1);
  });
});

describe('mutual TLS with TALLY_TLS_GROUPS=X25519MLKEM768', () => {
  let ca: TestCa;
  let tally: TallyProcess;
  let orders: IssuedCertificate;

  beforeAll(async () => {
    ca = createTestCa();
    const served = ca.server();
    orders = ca.client('/O=Tally Tests/CN=orders');
    tally = await startTally({
      env: {
        TALLY_CALLERS_FILE: writeCallersFile([{ name: 'orders', permissions: ['issue', 'introspect'], tlsIdentity: 'O=Tally Tests,CN=orders' }]),
        TALLY_TLS_CERT_FILE: served.certFile,
        TALLY_TLS_KEY_FILE: served.keyFile,
        TALLY_TLS_CLIENT_CA_FILE: ca.certFile,
        TALLY_TLS_GROUPS: 'X25519MLKEM768',
      },
      tls: { ca: ca.cert, cert: orders.cert, key: orders.key },
    });
  });
  afterAll(async () => {
    await tally?.stop();
  });

  it.each(PORTS)('negotiates X25519MLKEM768 with a client certificate on the %s port', async (port) => {
    expect(await negotiate(tally, port, { ca: ca.cert, cert: orders.cert, key: orders.key })).toMatchObject({ name: 'X25519MLKEM768' });
  });

  it.each(PORTS)('refuses a client that offers only X25519 on the %s port, and the log names the setting', async (port) => {
    expect(await negotiate(tally, port, { ca: ca.cert, cert: orders.cert, key: orders.key, ecdhCurve: 'X25519' })).toBe('refused');
    await eventually(async () => {
      const line = tally.logs().find((entry) => entry.port === port && String(entry.msg).includes('TALLY_TLS_GROUPS'));
      if (line === undefined) throw new Error(`no log line names TALLY_TLS_GROUPS for the ${port} port`);
      expect(line).toMatchObject({ level: 'warn', tls_groups: 'X25519MLKEM768' });
    }, 5_000);
  });

  it('serves a grpc-js client with its certificate over it', async () => {
    expect(await introspectsOverGrpc(tally, grpc.credentials.createSsl(ca.cert, orders.key, orders.cert))).toBe(true);
  });

  it('counts the refusals per port', async () => {
    const text = await metricsText(tally, { ca: ca.cert, cert: orders.cert, key: orders.key });
    for (const port of PORTS) {
      expect(counter(text, 'tally_tls_handshake_failures_total', `port="${port}",reason="no_shared_group"`)).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('TALLY_TLS_GROUPS at start-up', () => {
  it.each([
    ['a group OpenSSL does not know', { TALLY_TLS_GROUPS: 'X25519MLKEM768:bogus' }, /TALLY_TLS_GROUPS: OpenSSL .* does not know every group/],
    ['groups without TLS', { TALLY_TLS_GROUPS: 'X25519MLKEM768' }, /TALLY_TLS_GROUPS: key exchange groups need TLS/],
  ])('stops on %s, naming the variable', async (_name, env, message) => {
    const { runTallyToExit } = await import('../support/tally-process.js');
    const result = await runTallyToExit({ env });
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(message);
  });
});
