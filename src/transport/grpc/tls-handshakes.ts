// Handshake outcomes on the gRPC port. grpc-js makes its HTTP/2 server
// inside bindAsync and createConnectionInjector (which Tally uses, to cap
// connections) and offers no hook on it, so this wraps the one method
// that makes it (Server.createHttp2Server, grpc-js 1.10 to 1.14) and watches
// the server it returns, as the HTTP port does its own. When a grpc-js upgrade
// renames that method, start-up fails here rather than the metrics and the
// TALLY_TLS_GROUPS refusal log going quiet (test/transport/tls-groups.test.ts
// covers both ports).
import type * as grpc from '@grpc/grpc-js';
import type { Http2SecureServer } from 'node:http2';
import { observeTlsHandshakes, type TlsHandshakeObserver } from '../tls/tls-handshakes.js';

interface Http2ServerMaker {
  createHttp2Server(credentials: grpc.ServerCredentials): Http2SecureServer;
}

export function observeGrpcTlsHandshakes(server: grpc.Server, observe: TlsHandshakeObserver): void {
  const maker = server as unknown as Http2ServerMaker;
  if (typeof maker.createHttp2Server !== 'function') {
    throw new Error('this @grpc/grpc-js has no Server.createHttp2Server; TLS handshakes on the gRPC port cannot be observed');
  }
  const make = maker.createHttp2Server.bind(server);
  maker.createHttp2Server = (credentials) => {
    const made = make(credentials);
    observeTlsHandshakes(made, 'grpc', observe);
    return made;
  };
}
