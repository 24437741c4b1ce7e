// Tally in the test process, built by the same factory as main.ts (src/app.ts)
// from settings, so in-process tests run what ships: the guard, validation,
// scan limiter, metrics, ext_authz and the OAuth routes. Only what a test
// chooses differs: the store (one it controls, or memory), settings it
// overrides, and log lines kept for assertions instead of going to stdout.

import { loadConfig } from '../../src/config.js';
import type { Store } from '../../src/core/ports.js';
import type { TokenService } from '../../src/core/token-service.js';
import { startTally, stopTally } from '../../src/app.js';
import { createLogger } from '../../src/log.js';
import { createMemoryStore } from '../../src/store/index.js';
import type { Metrics } from '../../src/transport/telemetry/metrics.js';
import type { Readiness } from '../../src/transport/telemetry/readiness.js';

export interface InProcessTallyOptions {
  store?: Store;
  /** TALLY_* settings over the test defaults below. */
  env?: Record<string, string>;
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
  metrics: Metrics;
  /** Every log line written so far, parsed. */
  logs(): Record<string, unknown>[];
  /** Every log line written so far, as written. */
  rawLogs(): string;
  /** Drains and stops both servers (as SIGTERM would), within timeoutMs. */
  shutdown(timeoutMs?: number): Promise<{ grpcClean: boolean; httpClean: boolean }>;
  close(): Promise<void>;
}

export const TEST_ISSUER = 'https://tally.test';
export const TEST_MASTER_KEY = Buffer.alloc(32, 7).toString('base64');

export async function startInProcessTally(options: InProcessTallyOptions = {}): Promise<InProcessTally> {
  const config = loadConfig({
    // Every line, unless a test sets the level: tests read the lines of calls that went well.
    TALLY_LOG_LEVEL: 'debug',
    TALLY_HOST: '127.0.0.1',
    TALLY_GRPC_PORT: '0',
    TALLY_HTTP_PORT: '0',
    TALLY_MASTER_KEY: TEST_MASTER_KEY,
    TALLY_ISSUER: TEST_ISSUER,
    TALLY_REDIS_COMMAND_TIMEOUT: '500ms',
    TALLY_HEALTH_CHECK_INTERVAL: `${options.healthCheckIntervalMs ?? 50}ms`,
    ...(options.maxMessageBytes === undefined ? {} : { TALLY_MAX_MESSAGE_BYTES: String(options.maxMessageBytes) }),
    ...options.env,
  });
  const lines: string[] = [];
  const logger = createLogger({ level: config.logLevel, destination: { write: (line: string) => void lines.push(line) } });
  const running = await startTally(config, { logger, store: options.store ?? createMemoryStore() });
  await running.started;

  let stopped: Promise<{ grpcClean: boolean; httpClean: boolean }> | undefined;
  const shutdown = (timeoutMs = 5_000) => {
    stopped ??= stopTally(running, timeoutMs).then(({ grpcClean, httpClean }) => ({ grpcClean, httpClean }));
    return stopped;
  };

  return {
    grpcAddress: `127.0.0.1:${running.grpcPort}`,
    httpUrl: `http://127.0.0.1:${running.httpPort}`,
    tokens: running.tokens,
    readiness: running.readiness,
    metrics: running.metrics,
    logs: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
    rawLogs: () => lines.join(''),
    shutdown,
    close: async () => {
      await shutdown(1_000);
    },
  };
}
