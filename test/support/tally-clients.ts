// Clients for a running Tally on both ports: the independent grpc-js client
// on the gRPC port, Connect (JSON) and gRPC-Web on the HTTP port.

import { createClient, type Client, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { createGrpcTestClient, type GrpcTestClient } from './grpc-client.js';

export interface TallyClients {
  grpc: GrpcTestClient;
  connect: Client<typeof TokenService>;
  connectBinary: Client<typeof TokenService>;
  grpcWeb: Client<typeof TokenService>;
  close(): void;
}

export interface HttpTransports {
  connect: Transport;
  connectBinary: Transport;
  grpcWeb: Transport;
}

/** The HTTP port's protocols, each set up as a client of it would: Connect (JSON), Connect (binary), gRPC-Web. */
export function createHttpTransports(httpUrl: string): HttpTransports {
  return {
    connect: createConnectTransport({ baseUrl: httpUrl, httpVersion: '1.1' }),
    connectBinary: createConnectTransport({ baseUrl: httpUrl, httpVersion: '1.1', useBinaryFormat: true }),
    grpcWeb: createGrpcWebTransport({ baseUrl: httpUrl, httpVersion: '1.1' }),
  };
}

export function createTallyClients(target: { grpcAddress: string; httpUrl: string }): TallyClients {
  const grpc = createGrpcTestClient(target.grpcAddress);
  const transports = createHttpTransports(target.httpUrl);
  return {
    grpc,
    connect: createClient(TokenService, transports.connect),
    connectBinary: createClient(TokenService, transports.connectBinary),
    grpcWeb: createClient(TokenService, transports.grpcWeb),
    close: () => grpc.close(),
  };
}

/** The "kid" in a JWT's protected header. */
export function kidOf(jwt: string): string {
  const [header] = jwt.split('.');
  return (JSON.parse(Buffer.from(header!, 'base64url').toString()) as { kid: string }).kid;
}
