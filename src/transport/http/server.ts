// The HTTP port: tally.v1.TokenService over the Connect protocol (JSON and
// binary) and gRPC-Web through connect-node, and plain HTTP routes beside it.
// Plain gRPC is left to the gRPC port: it needs HTTP/2 trailers, and grpc-js
// serves it faster.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Code, ConnectError, createContextKey, createContextValues, type Interceptor } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { TokenService } from '../../gen/tally/v1/token_service_pb.js';
import type { Logger } from '../../log.js';
import { codeOfHttpStatus, toConnectError } from '../call/errors.js';
import { callKey, type Call, type CallPipeline } from '../call/pipeline.js';
import type { Readiness } from '../telemetry/readiness.js';
import type { TokenServiceHandlers } from '../service.js';
import { isLoopbackAddress, verifiedIdentities, type PeerInfo } from '../call/peer.js';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { secureContextOptions, type TlsFiles } from '../tls/tls-files.js';
import { observeTlsHandshakes } from '../tls/tls-handshakes.js';
import type { UniversalHandler } from '@connectrpc/connect/protocol';
import { correctParseFailures } from './parse-failures.js';
import { createProbeRoutes } from './probes.js';
import { createRouter, type Route } from './router.js';

export interface HttpServerOptions {
  /** The handlers as served by the pipeline (CallPipeline.serve). */
  handlers: TokenServiceHandlers;
  readiness: Readiness;
  /** Begins each RPC as its request arrives and ends it when the answer is out. */
  pipeline: CallPipeline;
  logger: Logger;
  maxMessageBytes: number;
  /** More plain HTTP routes (OAuth endpoints, JWKS, metrics). */
  routes?: Route[];
  /** Serve HTTPS (mutual with a client CA) from these files, following their changes; unset: plaintext. */
  tls?: TlsFiles;
  /** What a client may hold, credential or not (docs/security.md, "Limits"); unset: Node.js's defaults. */
  limits?: HttpLimits;
}

export interface HttpLimits {
  maxConnections: number;
  /** Told each time a connection past maxConnections is closed. */
  onConnectionRefused?: () => void;
  /** A request whose headers are not complete this long after it began gets 408 and its connection closed. */
  headersTimeoutMs: number;
  /** Likewise for the whole request, body included. */
  requestTimeoutMs: number;
}

/**
 * Node.js checks the two request timeouts on a timer, every 30 s by default;
 * so that they hold to within a second, it runs more often.
 */
function timeoutOptions(limits: HttpLimits | undefined) {
  if (limits === undefined) return {};
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
  };
}

export interface HttpServer {
  listen(host: string, port: number): Promise<number>;
  /** As GrpcServer.shutdown: stop accepting, let running calls finish, cut the rest after timeoutMs. */
  shutdown(timeoutMs: number): Promise<boolean>;
}

interface CallOutcome {
  error?: ConnectError;
  handled: boolean;
}

const callOutcomeKey = createContextKey<CallOutcome | undefined>(undefined, { description: 'tally call outcome' });

/**
 * Core errors become statuses here, before connect-node sees them: it would
 * otherwise pass an unknown error's own message to the client.
 */
const recordOutcome: Interceptor = (next) => async (request) => {
  const outcome = request.contextValues.get(callOutcomeKey);
  try {
    const response = await next(request);
    if (outcome !== undefined) outcome.handled = true;
    return response;
  } catch (thrown) {
    const error = toConnectError(thrown);
    if (outcome !== undefined) Object.assign(outcome, { handled: true, error });
    throw error;
  }
};

// For failures connect-node answers before any handler runs (a body too large,
// a malformed message): the status it wrote is all there is to go on.
function codeWritten(response: ServerResponse): Code | 0 {
  // Closed before the answer was complete: the client went away.
  if (!response.writableFinished) return Code.Canceled;
  const grpcStatus = Number(response.getHeader('grpc-status') ?? Number.NaN);
  if (Number.isInteger(grpcStatus)) return grpcStatus as Code | 0;
  return codeOfHttpStatus(response.statusCode);
}

function protocolOf(request: IncomingMessage): string {
  const contentType = request.headers['content-type'] ?? '';
  return contentType.startsWith('application/grpc-web') ? 'grpc-web' : 'connect';
}

type ConnectionPeer = Pick<PeerInfo, 'address' | 'loopback' | 'tlsIdentities'>;

// What belongs to the connection is worked out once for all its requests.
const peersOfSockets = new WeakMap<Socket, ConnectionPeer>();

function connectionPeerOf(socket: Socket & Partial<Pick<TLSSocket, 'authorized' | 'getPeerCertificate'>>): ConnectionPeer {
  const { remoteAddress, remotePort } = socket;
  const certificate = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
  return {
    address: remoteAddress?.includes(':') === true ? `[${remoteAddress}]:${remotePort}` : `${remoteAddress}:${remotePort}`,
    loopback: isLoopbackAddress(remoteAddress),
    tlsIdentities: verifiedIdentities(certificate, socket.authorized === true),
  };
}

export function peerInfoOf(request: IncomingMessage): PeerInfo {
  const socket = request.socket;
  let connection = peersOfSockets.get(socket);
  if (connection === undefined) {
    connection = connectionPeerOf(socket);
    peersOfSockets.set(socket, connection);
  }
  return { address: connection.address, loopback: connection.loopback, tlsIdentities: connection.tlsIdentities, host: request.headers.host };
}

// Connect allows GET for side-effect-free methods, with the request in the
// query string; for Introspect that is the token in a URL, where proxies and
// access logs keep it. POST only.
const INTROSPECT_PATH = `/${TokenService.typeName}/${TokenService.method.introspect.name}?`;

function refuseTokenInUrl(response: ServerResponse): void {
  response.writeHead(405, { allow: 'POST', 'content-type': 'application/json' });
  response.end(
    JSON.stringify({ code: 'unimplemented', message: 'Introspect takes the token in a POST body, never in a URL' }),
  );
}

export function createHttpServer(options: HttpServerOptions): HttpServer {
  const pending = new WeakMap<IncomingMessage, { call: Call; outcome: CallOutcome }>();
  const connectHandler = connectNodeAdapter({
    routes: (router) => {
      router.service(TokenService, options.handlers);
      // In place: connect-node reads the router's handlers after this returns.
      const handlers = router.handlers as UniversalHandler[];
      // HTTP/1.1 cannot carry a bidirectional stream (FollowRevocations): not served here, so not found.
      handlers.splice(0, handlers.length, ...handlers.filter((handler) => handler.method.methodKind !== 'bidi_streaming'));
      handlers.forEach((handler, index) => (handlers[index] = correctParseFailures(handler)));
    },
    grpc: false,
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    interceptors: [recordOutcome],
    contextValues: (request) => {
      const rpc = pending.get(request as IncomingMessage);
      return createContextValues().set(callKey, rpc?.call).set(callOutcomeKey, rpc?.outcome);
    },
  });

  let draining = false;

  const rpc = (request: IncomingMessage, response: ServerResponse) => {
    if (request.method === 'GET' && (request.url ?? '').startsWith(INTROSPECT_PATH)) {
      refuseTokenInUrl(response);
      return;
    }
    const method = (request.url ?? '/').split('?', 1)[0]!.slice(1);
    const call = options.pipeline.begin(method, protocolOf(request), peerInfoOf(request), request.headers['x-request-id'], request.headers);
    const outcome: CallOutcome = { handled: false };
    pending.set(request, { call, outcome });
    response.once('close', () => {
      const { handled, error } = outcome;
      const written = codeWritten(response);
      // A handler that succeeded can still fail the call: connect-node writes
      // the answer after it, and an answer JSON cannot hold (a claim of
      // Infinity) goes out as an error. The log says what the client got.
      const failedAfterHandler = handled && error === undefined && written !== 0;
      const code = handled && !failedAfterHandler ? (error?.code ?? 0) : written;
      const unexplained = failedAfterHandler ? 'the answer could not be written' : 'rejected by the protocol handler';
      call.end(code, error ?? (code === 0 ? undefined : new ConnectError(unexplained, code)));
    });
    // While draining, each answer closes its connection, so idle keep-alive
    // connections do not hold the shutdown open.
    if (draining) response.setHeader('connection', 'close');
    connectHandler(request, response);
  };

  const routes = [...createProbeRoutes(options.readiness), ...(options.routes ?? [])];
  const listener = createRouter(routes, rpc, (error) => options.logger.error({ err: error }, 'an HTTP route failed'));
  const { tls, limits } = options;
  // HTTP/1.1 over TLS: Connect and gRPC-Web need nothing more, and the router stays the same.
  const server: Server =
    tls === undefined
      ? createServer(timeoutOptions(limits), listener)
      : createHttpsServer(
          // With a client CA the handshake itself refuses a client without a certificate the CA signed.
          { ...timeoutOptions(limits), ...secureContextOptions(tls.current()), requestCert: tls.mutual, rejectUnauthorized: tls.mutual },
          listener,
        );
  if (limits !== undefined) {
    server.maxConnections = limits.maxConnections;
    server.on('drop', () => limits.onConnectionRefused?.());
  }
  tls?.onChange((material) => (server as HttpsServer).setSecureContext(secureContextOptions(material)));
  if (tls !== undefined) observeTlsHandshakes(server as HttpsServer, 'http', tls.observeHandshake);

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    shutdown(timeoutMs) {
      draining = true;
      return new Promise((resolve) => {
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        const timer = setTimeout(() => {
          clearInterval(sweep);
          server.closeAllConnections();
          resolve(false);
        }, timeoutMs);
        server.close(() => {
          clearInterval(sweep);
          clearTimeout(timer);
          resolve(true);
        });
      });
    },
  };
}
