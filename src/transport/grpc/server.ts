// The gRPC port: tally.v1.TokenService on @grpc/grpc-js (the fast path:
// measured several times the calls per second of connect-node over h2c),
// grpc.health.v1.Health, server reflection v1 and v1alpha, and Envoy's
// ext_authz (envoy.service.auth.v3.Authorization) when given its handlers.

import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { ServiceImpl } from '@connectrpc/connect';
import { Authorization, file_envoy_service_auth_v3_external_auth } from '../../gen/envoy/service/auth/v3/external_auth_pb.js';
import { file_grpc_health_v1_health } from '../../gen/grpc/health/v1/health_pb.js';
import { file_grpc_reflection_v1_reflection } from '../../gen/grpc/reflection/v1/reflection_pb.js';
import { file_grpc_reflection_v1alpha_reflection } from '../../gen/grpc/reflection/v1alpha/reflection_pb.js';
import { file_tally_v1_token_service, TokenService } from '../../gen/tally/v1/token_service_pb.js';
import type { CallPipeline } from '../call/pipeline.js';
import type { Readiness } from '../telemetry/readiness.js';
import type { TokenServiceHandlers } from '../service.js';
import type { TlsFiles } from '../tls/tls-files.js';
import { createGrpcServerCredentials } from './credentials.js';
import { observeGrpcTlsHandshakes } from './tls-handshakes.js';
import { createGuardInterceptor } from './guard-interceptor.js';
import { createHealthService } from './health.js';
import { createReflection } from './reflection.js';
import { adaptUnaryService } from './unary-service.js';
import { adaptStreamingMethods } from './streaming.js';

export interface GrpcServerOptions {
  /** The handlers as served by the pipeline (CallPipeline.serve). */
  handlers: TokenServiceHandlers;
  readiness: Readiness;
  /** Begins every guarded call as its metadata arrives, before its message is read (guard-interceptor.ts). */
  pipeline: CallPipeline;
  maxMessageBytes: number;
  /** Envoy ext_authz Check handlers (as served by the pipeline); without them the service is not offered. */
  authorization?: ServiceImpl<typeof Authorization>;
  /** Serve TLS (mutual with a client CA) from these files, following their changes; unset: plaintext. */
  tls?: TlsFiles;
  /** What a client may hold, credential or not (docs/security.md, "Limits"); unset: grpc-js's own (unbounded) defaults. */
  limits?: GrpcLimits;
}

export interface GrpcLimits {
  maxConnections: number;
  /** Told each time a connection past maxConnections is closed. */
  onConnectionRefused?: () => void;
  maxConcurrentStreams: number;
  /** Whole MiB; Node.js counts it in megabytes. */
  maxSessionMemoryMiB: number;
  maxConnectionIdleMs: number;
  maxConnectionAgeMs: number;
  maxConnectionAgeGraceMs: number;
}

export interface GrpcServer {
  /** Resolves with the port bound (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  /**
   * Stops accepting calls and lets running ones finish; after timeoutMs cuts
   * whatever is left. Resolves true when everything finished in time.
   */
  shutdown(timeoutMs: number): Promise<boolean>;
}

export function createGrpcServer(options: GrpcServerOptions): GrpcServer {
  const { limits } = options;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
    ...(limits === undefined
      ? {}
      : {
          'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
          'grpc-node.max_session_memory': limits.maxSessionMemoryMiB,
          'grpc.max_connection_idle_ms': limits.maxConnectionIdleMs,
          'grpc.max_connection_age_ms': limits.maxConnectionAgeMs,
          'grpc.max_connection_age_grace_ms': limits.maxConnectionAgeGraceMs,
        }),
    interceptors: [createGuardInterceptor(options.pipeline)],
  });
  if (options.tls !== undefined) observeGrpcTlsHandshakes(server, options.tls.observeHandshake);
  const tokenService = adaptUnaryService(TokenService, options.handlers, { pipeline: options.pipeline });
  server.addService(tokenService.definition, tokenService.implementation);
  const tokenServiceStreams = adaptStreamingMethods(TokenService, options.handlers, { pipeline: options.pipeline });
  server.addService(tokenServiceStreams.definition, tokenServiceStreams.implementation);
  if (options.authorization !== undefined) {
    const authorization = adaptUnaryService(Authorization, options.authorization, { pipeline: options.pipeline });
    server.addService(authorization.definition, authorization.implementation);
  }
  const served = options.authorization === undefined ? [TokenService.typeName] : [TokenService.typeName, Authorization.typeName];
  const health = createHealthService(options.readiness, served);
  server.addService(health.definition, health.implementation);
  createReflection([
    file_tally_v1_token_service,
    ...(options.authorization === undefined ? [] : [file_envoy_service_auth_v3_external_auth]),
    file_grpc_health_v1_health,
    file_grpc_reflection_v1_reflection,
    file_grpc_reflection_v1alpha_reflection,
  ]).addToServer(server);

  // grpc-js has no bound on connections, so Tally accepts them itself and
  // hands each to grpc-js (its connection injector: same credentials,
  // settings and handlers as a bound port). Past the cap, Node.js closes a
  // new connection before reading from it.
  const injector = server.createConnectionInjector(createGrpcServerCredentials(options.tls));
  const listener = createTcpServer((socket) => injector.injectConnection(socket));
  if (limits !== undefined) {
    listener.maxConnections = limits.maxConnections;
    listener.on('drop', () => limits.onConnectionRefused?.());
  }

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        listener.once('error', reject);
        listener.listen(port, host, () => {
          listener.off('error', reject);
          resolve((listener.address() as AddressInfo).port);
        });
      });
    },
    shutdown(timeoutMs) {
      // Stops accepting; its callback comes once every connection has ended,
      // which for injected connections is what tells that their calls are done.
      const connectionsEnded = new Promise<void>((resolve) => listener.close(() => resolve()));
      // Watchers have seen NOT_SERVING by now; left open they would hold the shutdown.
      health.endWatches();
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve(false);
        }, timeoutMs);
        server.tryShutdown(() => {
          void connectionsEnded.then(() => {
            clearTimeout(timer);
            resolve(true);
          });
        });
      });
    },
  };
}
