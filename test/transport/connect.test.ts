// The HTTP port: the shared TokenService suite over Connect (JSON and
// binary) and gRPC-Web, then what only HTTP has: Connect GET, and JSON that
// no other protocol can send.

import { ConnectError } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { startInProcessTally } from '../support/in-process-tally.js';
import { createHttpTransports, type HttpTransports } from '../support/tally-clients.js';
import { describeTokenServiceConformance, type PortUnderTest } from './conformance.js';

const PROTOCOLS: { name: string; protocol: PortUnderTest['protocol']; transport: keyof HttpTransports }[] = [
  { name: 'Connect JSON', protocol: 'connect', transport: 'connect' },
  { name: 'Connect binary', protocol: 'connect', transport: 'connectBinary' },
  { name: 'gRPC-Web', protocol: 'grpc-web', transport: 'grpcWeb' },
];

for (const { name, protocol, transport } of PROTOCOLS) {
  describeTokenServiceConformance(`${name} on the HTTP port`, {
    protocol,
    connect(tally) {
      const sender = createHttpTransports(tally.httpUrl)[transport];
      return {
        // What a generated Connect client's method does: the transport's unary call, its message.
        call: async (method, request, options = {}) => (await sender.unary(method, undefined, options.timeoutMs, options.headers, request)).message,
        failureFrom: (error) => {
          const failure = ConnectError.from(error);
          return { code: failure.code, message: failure.rawMessage };
        },
        close: () => {},
      };
    },
  });
}

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
