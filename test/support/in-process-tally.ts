// Both servers in the test process, on ephemeral ports, wired as main.ts
// wires them but around a store the test chooses. Log lines are kept for
// assertions instead of going to stdout.

import type { Store } from '../../src/core/ports.js';
import { deriveSecrets } from '../../src/core/secrets.js';
import { createTokenService, type TokenService } from '../../src/core/token-service.js';
import { createLogger } from '../../src/log.js';
import { createMemoryStore } from '../../src/store/index.js';
import { createCallLogger } from '../../src/transport/call-log.js';
import { createGrpcServer } from '../../src/transport/grpc/server.js';
import { createHttpServer } from '../../src/transport/http/server.js';
import { createReadiness, type Readiness } from '../../src/transport/readiness.js';
import { createTokenServiceHandlers } from '../../src/transport/service.js';
import { validateService } from '../../src/transport/validate.js';
import { TokenService as TokenServiceDescriptor } from '../../src/gen/tally/v1/token_service_pb.js';

export interface InProcessTallyOptions {
  store?: Store;
  maxMessageBytes?: number;
  healthCheckIntervalMs?: number;
}

export interface InProcessTally {
  /** host:port for gRPC clients. */
  grpcAddress: string;
  /** http://127.0.0.1:port for Connect, gRPC-Web and plain HTTP. */
  httpUrl: string;
  tokens: TokenService;
  readiness: Readiness;
  /** Every log line written so far, parsed. */
  logs(): Record<string, unknown>[];
  /** Every log line written so far, as written. */
  rawLogs(): string;
  /** Drains and stops both servers (as SIGTERM would), within timeoutMs. */
  shutdown(timeoutMs?: number): Promise<{ grpcClean: boolean; httpClean: boolean }>;
  close(): Promise<void>;
}

export const TEST_ISSUER = 'https://tally.test';

export async function startInProcessTally(options: InProcessTallyOptions = {}): Promise<InProcessTally> {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
  const store = options.store ?? createMemoryStore();
  const tokens = createTokenService({
    store,
    secrets: deriveSecrets(new Uint8Array(32).fill(7)),
    issuer: TEST_ISSUER,
    defaultTtlMs: 3_600_000,
    maxTtlMs: 86_400_000,
    clockSkewMs: 60_000,
    keyAlgorithm: 'EdDSA',
    keyRefreshMs: 1_000,
  });
  await tokens.start();
  const readiness = createReadiness({
    ping: () => store.ping(),
    keyRingLoaded: () => tokens.ready(),
    intervalMs: options.healthCheckIntervalMs ?? 50,
    pingTimeoutMs: 500,
    logger,
  });
  await readiness.start();
  // As main.ts: the proto's validation rules before every handler.
  const handlers = validateService(TokenServiceDescriptor, createTokenServiceHandlers(tokens));
  const logCall = createCallLogger(logger);
  const maxMessageBytes = options.maxMessageBytes ?? 64 * 1024;
  const grpcServer = createGrpcServer({ handlers, readiness, logCall, maxMessageBytes });
  const httpServer = createHttpServer({ handlers, readiness, logCall, logger, maxMessageBytes });
  const grpcPort = await grpcServer.listen('127.0.0.1', 0);
  const httpPort = await httpServer.listen('127.0.0.1', 0);

  let stopped: Promise<{ grpcClean: boolean; httpClean: boolean }> | undefined;
  const shutdown = (timeoutMs = 5_000) => {
    stopped ??= (async () => {
      readiness.drain();
      const [grpcClean, httpClean] = await Promise.all([grpcServer.shutdown(timeoutMs), httpServer.shutdown(timeoutMs)]);
      readiness.stop();
      await tokens.stop();
      await store.close();
      return { grpcClean, httpClean };
    })();
    return stopped;
  };

  return {
    grpcAddress: `127.0.0.1:${grpcPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    tokens,
    readiness,
    logs: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
    rawLogs: () => lines.join(''),
    shutdown,
    close: async () => {
      await shutdown(1_000);
    },
  };
}
