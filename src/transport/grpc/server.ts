// The gRPC port: tally.v1.TokenService on @grpc/grpc-js (the fast path:
// measured several times the calls per second of connect-node over h2c),
// grpc.health.v1.Health, server reflection v1 and v1alpha, and Envoy's
// ext_authz (envoy.service.auth.v3.Authorization) when given its handlers.

import * as grpc from '@grpc/grpc-js';
import type { ServiceImpl } from '@connectrpc/connect';
import { Authorization, file_envoy_service_auth_v3_external_auth } from '../../gen/envoy/service/auth/v3/external_auth_pb.js';
import { file_grpc_health_v1_health } from '../../gen/grpc/health/v1/health_pb.js';
import { file_grpc_reflection_v1_reflection } from '../../gen/grpc/reflection/v1/reflection_pb.js';
import { file_grpc_reflection_v1alpha_reflection } from '../../gen/grpc/reflection/v1alpha/reflection_pb.js';
import { file_tally_v1_token_service, TokenService } from '../../gen/tally/v1/token_service_pb.js';
import type { CallLogger } from '../call-log.js';
import type { Readiness } from '../readiness.js';
import type { TokenServiceHandlers } from '../service.js';
import type { TlsFiles } from '../tls-files.js';
import { createGrpcServerCredentials } from './credentials.js';
import { observeGrpcTlsHandshakes } from './tls-handshakes.js';
import { createHealthService } from './health.js';
import { createReflection } from './reflection.js';
import { adaptUnaryService } from './unary-service.js';

export interface GrpcServerOptions {
  handlers: TokenServiceHandlers;
  readiness: Readiness;
  logCall: CallLogger;
  maxMessageBytes: number;
  /** Envoy ext_authz Check handlers (guarded); without them the service is not offered. */
  authorization?: ServiceImpl<typeof Authorization>;
  /** Serve TLS (mutual with a client CA) from these files, following their changes; unset: plaintext. */
  tls?: TlsFiles;
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
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
  });
  if (options.tls !== undefined) observeGrpcTlsHandshakes(server, options.tls.observeHandshake);
  const tokenService = adaptUnaryService(TokenService, options.handlers, { logCall: options.logCall });
  server.addService(tokenService.definition, tokenService.implementation);
  if (options.authorization !== undefined) {
    const authorization = adaptUnaryService(Authorization, options.authorization, { logCall: options.logCall });
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

  return {
    listen(host, port) {
      const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      return new Promise((resolve, reject) => {
        server.bindAsync(address, createGrpcServerCredentials(options.tls), (error, boundPort) => {
          if (error === null) resolve(boundPort);
          else reject(error);
        });
      });
    },
    shutdown(timeoutMs) {
      // Watchers have seen NOT_SERVING by now; left open they would hold the shutdown.
      health.endWatches();
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve(false);
        }, timeoutMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    },
  };
}
