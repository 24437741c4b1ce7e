// The composition: settings → store → token service → the call pipeline →
// both servers, and the way back down. main.ts runs it as a process; the
// tests run the very same thing in theirs (test/support/in-process-tally.ts),
// with a store or a logger of their choosing, so what they test is what
// ships: the guard, validation, scan limiter, metrics, ext_authz and the
// OAuth routes included.

import { randomBytes } from 'node:crypto';
import type { Config } from './config.js';
import { KeyRingError } from './core/errors.js';
import type { Store } from './core/ports.js';
import { deriveSecrets } from './core/secrets.js';
import { createTokenService, type TokenService } from './core/token-service.js';
import { createRevocationWatch } from './core/revocation-watch.js';
import type { Logger } from './log.js';
import { createStore } from './store/index.js';
import { SETTINGS_README_SECTION, type SettingsReport, type StoreChange } from './store/index.js';
import { createCallLogger } from './transport/call/call-log.js';
import { createGrpcServer, type GrpcServer } from './transport/grpc/server.js';
import { createHttpServer, type HttpServer } from './transport/http/server.js';
import { createReadiness, type Readiness } from './transport/telemetry/readiness.js';
import { createTokenServiceHandlers } from './transport/service.js';
import { createGuard } from './transport/call/guard.js';
import { watchCallers, type CallersWatcher } from './auth/callers-watcher.js';
import { TokenService as TokenServiceDescriptor } from './gen/tally/v1/token_service_pb.js';
import { Authorization, type CheckRequest } from './gen/envoy/service/auth/v3/external_auth_pb.js';
import { REQUIRED_PERMISSION } from './auth/authorize.js';
import { instrumentStore } from './store/instrumented-store.js';
import { createMetrics, type Metrics } from './transport/telemetry/metrics.js';
import { checkedRequestCarrier, createExtAuthzHandlers } from './transport/grpc/ext-authz.js';
import { createStandardRoutes } from './transport/http/standard-routes.js';
import { INTERNAL_JWKS_PATH, JWKS_PATH, staleIfErrorMs } from './transport/http/jwks.js';
import { createScanLimiter } from './auth/scan-limiter.js';
import { systemClock } from './core/system.js';
import { watchTlsFiles, type TlsFiles } from './transport/tls/tls-files.js';
import { createRequestValidator } from './transport/call/validate.js';
import { createCallPipeline } from './transport/call/pipeline.js';
import { createTracing, type Tracing } from './transport/telemetry/tracing.js';
import type { TracingSettings } from './transport/telemetry/tracing-settings.js';

/** What the process (or a test) may choose; everything else comes from the settings. */
export interface TallyParts {
  logger: Logger;
  /** The store to use instead of the one TALLY_REDIS_URL names (tests: a store they control). */
  store?: Store;
  /** OpenTelemetry tracing as the OTEL_* variables ask for it (transport/telemetry/tracing-settings.ts); undefined: off. */
  tracing?: TracingSettings;
}

export interface RunningTally {
  logger: Logger;
  config: Config;
  store: Store;
  tokens: TokenService;
  readiness: Readiness;
  metrics: Metrics;
  grpcServer: GrpcServer;
  httpServer: HttpServer;
  callers: CallersWatcher;
  tls: TlsFiles | undefined;
  tracing: Tracing | undefined;
  /** The ports bound (useful with port 0). */
  grpcPort: number;
  httpPort: number;
  /** Settles when the token service has started, or start-up was abandoned. */
  started: Promise<void>;
  stopStarting(): void;
}

export interface Stopped {
  grpcClean: boolean;
  httpClean: boolean;
  storeClosed: boolean;
}

const START_RETRY_MAX_DELAY_MS = 5_000;

const STORE_CHANGE_MESSAGES: Record<StoreChange, string> = {
  'set-up-again':
    'Redis lost its data (emptied, or restarted with nothing kept) and Tally set it up again under the same master key: tokens, revocations and signing keys made before are gone, so those tokens are inactive; this replica dropped its local view and rebuilt it (README: "When Redis loses data")',
  'went-back':
    'Redis came back without its latest revocation events (a failover to a replica that was behind, or a restore from an older backup): this replica dropped its local view and rebuilt it from Redis as it is now; revocations Redis lost are lost (README: "When Redis loses data")',
};

function throttled(interval: number, log: (error: Error) => void): (error: Error) => void {
  let last = 0;
  return (error) => {
    if (Date.now() - last < interval) return;
    last = Date.now();
    log(error);
  };
}

/** As throttled, once per interval for each key. */
function throttledByKey(interval: number, log: (key: string) => void): (key: string) => void {
  const last = new Map<string, number>();
  return (key) => {
    if (Date.now() - (last.get(key) ?? -Infinity) < interval) return;
    last.set(key, Date.now());
    log(key);
  };
}

function masterKeyOf(config: Config, logger: Logger): Uint8Array {
  if (config.masterKey !== undefined) return config.masterKey;
  logger.warn(
    'TALLY_MASTER_KEY is not set: using a random master key for this process only; tokens cannot outlive it',
  );
  return new Uint8Array(randomBytes(32));
}

/**
 * Starts the token service, retrying while the store does not answer, so a
 * Tally started before its Redis comes up by itself. A store set up under
 * another master key is not transient: that stops the process.
 */
async function startTokenService(tokens: TokenService, logger: Logger, cancelled: () => boolean): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await tokens.start();
      return;
    } catch (error) {
      if (error instanceof KeyRingError || cancelled()) throw error;
      const delay = Math.min(START_RETRY_MAX_DELAY_MS, 250 * 2 ** Math.min(attempt, 5));
      logger.warn({ err: error, attempt, retry_in_ms: delay }, 'the token service could not start; retrying');
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (cancelled()) throw error;
    }
  }
}

/**
 * Says which Redis settings can lose or evict revocations, at start-up and
 * after a reconnect whenever the answer differs from the last one (a
 * failover may land on a server set up otherwise).
 */
function settingsLogger(logger: Logger): (report: SettingsReport) => void {
  let last: string | undefined;
  return (report) => {
    const summary = JSON.stringify(report.checked ? report.risky : { server: report.server });
    if (summary === last) return;
    last = summary;
    if (!report.checked) {
      logger.warn(
        { server: report.server, err: report.error },
        `could not check Redis persistence and eviction settings (CONFIG GET was refused); make sure appendonly, appendfsync and maxmemory-policy keep revocations (${SETTINGS_README_SECTION})`,
      );
      return;
    }
    for (const { server, setting, value, risk } of report.risky) {
      logger.warn({ server, setting, value }, `Redis ${setting} is ${value}: ${risk} (${SETTINGS_README_SECTION})`);
    }
  };
}

/** The TLS files of both ports, followed for rotation; undefined for plaintext. */
function watchTls(config: Config, logger: Logger, metrics: Metrics): TlsFiles | undefined {
  if (config.tlsCertFile === undefined || config.tlsKeyFile === undefined) return undefined;
  // A client that offers none of the accepted groups is refused at the handshake and learns only that; the log says which setting did it.
  const groups = config.tlsGroups ?? "OpenSSL's default list";
  const refusedForGroups = throttledByKey(10_000, (port: string) =>
    logger.warn({ port, tls_groups: groups }, `a TLS client offered no key exchange group that TALLY_TLS_GROUPS (${groups}) accepts; the handshake was refused`),
  );
  try {
    return watchTlsFiles({
      certFile: config.tlsCertFile,
      keyFile: config.tlsKeyFile,
      clientCaFile: config.tlsClientCaFile,
      pollIntervalMs: 1_000,
      onReload: (files) => logger.info({ files }, 'TLS certificate files reloaded; new connections use them'),
      onError: (error) => logger.error({ err: error }, 'the TLS files changed but cannot be used yet; still serving the previous certificate'),
      groups: config.tlsGroups,
      onHandshake: (outcome) => {
        metrics.observeTlsHandshake(outcome);
        if (!outcome.ok && outcome.reason === 'no_shared_group') refusedForGroups(outcome.port);
      },
    });
  } catch (error) {
    throw new Error(`TALLY_TLS_CERT_FILE, TALLY_TLS_KEY_FILE, TALLY_TLS_CLIENT_CA_FILE: ${(error as Error).message}`);
  }
}

/**
 * Builds Tally from its settings and listens on both ports at once; the token
 * service starts behind (RunningTally.started), retrying while the store does
 * not answer.
 */
export async function startTally(config: Config, parts: TallyParts): Promise<RunningTally> {
  const { logger } = parts;
  if (config.redisUrl === undefined && parts.store === undefined) {
    logger.warn(
      'TALLY_REDIS_URL is not set: tokens, revocations and keys live in this process only; nothing is shared with other replicas and everything is lost when it exits',
    );
  }
  const viewError = throttled(10_000, (error) => logger.warn({ err: error }, 'the replica view could not follow Redis'));
  const knownMethods = [...Object.keys(REQUIRED_PERMISSION), `GET ${JWKS_PATH}`, `GET ${INTERNAL_JWKS_PATH}`];
  const metrics = createMetrics({ knownMethods });
  const exportFailed = throttled(60_000, (error) => logger.warn({ error: error.message }, 'tracing: spans could not be exported (OTEL_EXPORTER_OTLP_*)'));
  const tracing = await createTracing(parts.tracing, { knownMethods, onExportError: (message) => exportFailed(new Error(message)) });
  if (parts.tracing !== undefined) logger.info({ protocol: parts.tracing.protocol, sampler: parts.tracing.sampler.kind }, 'tracing on: spans go to the OTLP endpoint');
  const store = instrumentStore(parts.store ?? createStore({
    redisUrl: config.redisUrl,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    cacheSize: config.cacheSize,
    leaseMs: config.leaseMs,
    holderLeaseMs: config.clientLeaseMs,
    replicasToWait: config.redisWaitReplicas ?? (config.redis?.kind === 'sentinel' ? 1 : 0),
    onConnectionError: throttled(10_000, (error) => logger.warn({ err: error }, 'Redis connection error')),
    onBackgroundError: (error) => viewError(error as Error),
    onLeaseLapsed: metrics.countLeaseLapse,
    onStoreChange: (change) => {
      metrics.countStoreChange(change);
      logger.error({ change }, STORE_CHANGE_MESSAGES[change]);
    },
    onSettingsChecked: settingsLogger(logger),
  }), metrics.observeStore, tracing?.traceStep);
  let callers: CallersWatcher;
  try {
    callers = watchCallers({
      path: config.callersFile,
      pollIntervalMs: 1_000,
      allowEmptying: config.callersAllowEmpty,
      onReload: (directory) => logger.info({ callers: directory.callers.map((caller) => caller.name) }, 'callers file reloaded'),
      onError: (error) => logger.error({ err: error }, 'the callers file changed but cannot be used; keeping the previous callers'),
    });
  } catch (error) {
    throw new Error(`TALLY_CALLERS_FILE: ${(error as Error).message}`);
  }
  if (callers.current().callers.length === 0) {
    if (config.protectedMode) {
      logger.warn(
        'no callers are configured (TALLY_CALLERS_FILE), so protected mode serves loopback clients only; configure callers to serve others, or set TALLY_PROTECTED_MODE=no behind a network boundary you trust',
      );
    } else {
      logger.warn('no callers are configured and TALLY_PROTECTED_MODE=no: every client that reaches the ports may issue, introspect, revoke and rotate keys');
    }
  }
  const tls = watchTls(config, logger, metrics);
  const guard = createGuard({ callers: () => callers.current(), protectedMode: config.protectedMode });
  const tokens = metrics.countIssues(metrics.countIntrospections(createTokenService({
    store,
    secrets: deriveSecrets(masterKeyOf(config, logger)),
    issuer: config.issuer,
    defaultTtlMs: config.defaultTtlMs,
    maxTtlMs: config.maxTtlMs,
    clockSkewMs: config.clockSkewMs,
    keyAlgorithm: config.keyAlgorithm,
    internalKeyAlgorithm: config.internalKeyAlgorithm,
    keyRefreshMs: config.keyRefreshMs,
    keyRotationIntervalMs: config.keyRotationIntervalMs,
    // As many as the store keeps records for: the ids of the tokens whose records this replica holds.
    tokenIdsToRemember: config.cacheSize,
    maxClaimsBytes: config.maxClaimsBytes,
    maxTokenLength: config.maxTokenLength,
    onBackgroundError: (error, task) => logger.warn({ err: error, task }, 'background work failed'),
    onClockOffset: (offsetMs) =>
      offsetMs === 0
        ? logger.info('this replica\'s clock is back within TALLY_CLOCK_SKEW of the store\'s')
        : logger.warn({ offset_ms: Math.round(offsetMs) }, 'this replica\'s clock is more than TALLY_CLOCK_SKEW off the store\'s; Tally judges token times on the store\'s clock, so answers stay exact, but fix the clock (NTP)'),
    traceStep: tracing?.traceStep,
    onTampered: (kind, id) =>
      logger.error({ kind, id }, 'a value in the store failed its integrity check and was ignored: someone without the master key wrote to Redis'),
  })));
  metrics.watchKeys(() => tokens.listKeys(), config.keyRotationIntervalMs);
  const readiness = createReadiness({
    ping: () => store.ping(),
    keyRingLoaded: () => tokens.ready(),
    intervalMs: config.healthCheckIntervalMs,
    pingTimeoutMs: config.redisCommandTimeoutMs,
    logger,
  });
  const scanLimiter = metrics.countScanLimitRefusals(createScanLimiter({ missesPerSecond: config.scanLimitPerSecond, burst: config.scanLimitBurst, clock: systemClock }));
  // The steps of every call on every port, in their one order (transport/call/pipeline.ts).
  const pipeline = createCallPipeline({
    guard,
    validate: createRequestValidator(),
    count: metrics.countCalls(() => {}),
    log: createCallLogger(logger),
    tracing,
  });
  // Clients keeping a local view (WatchRevocations) watch elsewhere once this replica drains.
  const revocationWatch = createRevocationWatch({ store });
  readiness.onChange(() => readiness.draining() && revocationWatch.endAll());
  const handlers = pipeline.serve(TokenServiceDescriptor, createTokenServiceHandlers(tokens, { scanLimiter, revocationWatch }));
  // Envoy passes its own trace context in the call's metadata when it traces; when it does not, the checked request's headers may carry the client's.
  const authorization = pipeline.serve(Authorization, createExtAuthzHandlers({ tokens, internalJwtTtlMs: config.phantomTokenTtlMs, scanLimiter }), {
    traceCarrierOf: (request) => checkedRequestCarrier(request as CheckRequest),
  });
  const routes = createStandardRoutes({ tokens, pipeline, guard, metrics, maxBodyBytes: config.maxMessageBytes, jwksMaxAgeMs: config.jwksMaxAgeMs,
    jwksStaleIfErrorMs: staleIfErrorMs({ maxTokenTtlMs: config.maxTtlMs, keyRotationIntervalMs: config.keyRotationIntervalMs }), scanLimiter });
  // Throttled: a flood of refused connections must not become a flood of log lines.
  const connectionsRefused = (port: string) => {
    const warn = throttled(10_000, () => logger.warn({ port, max_connections: config.maxConnections }, 'TALLY_MAX_CONNECTIONS reached: new connections are being closed'));
    return () => warn(new Error('connection refused'));
  };
  const grpcConnectionRefused = connectionsRefused('grpc');
  const httpConnectionRefused = connectionsRefused('http');
  const grpcServer = createGrpcServer({
    handlers,
    authorization,
    pipeline,
    readiness,
    tls,
    maxMessageBytes: config.maxMessageBytes,
    limits: {
      maxConnections: config.maxConnections,
      onConnectionRefused: grpcConnectionRefused,
      maxConcurrentStreams: config.grpcMaxConcurrentStreams,
      maxSessionMemoryMiB: config.grpcMaxSessionMemory,
      maxConnectionIdleMs: config.grpcMaxConnectionIdleMs,
      maxConnectionAgeMs: config.grpcMaxConnectionAgeMs,
      maxConnectionAgeGraceMs: config.grpcMaxConnectionAgeGraceMs,
    },
  });
  const httpServer = createHttpServer({
    handlers,
    readiness,
    pipeline,
    logger,
    routes,
    tls,
    maxMessageBytes: config.maxMessageBytes,
    limits: {
      maxConnections: config.maxConnections,
      onConnectionRefused: httpConnectionRefused,
      headersTimeoutMs: config.httpHeadersTimeoutMs,
      requestTimeoutMs: config.httpRequestTimeoutMs,
    },
  });

  // Listening before the store answers: probes can say "alive, not ready"
  // instead of the connection being refused while Redis comes up.
  const [grpcPort, httpPort] = await Promise.all([
    grpcServer.listen(config.host, config.grpcPort),
    httpServer.listen(config.host, config.httpPort),
  ]);
  const security = tls === undefined ? 'plaintext' : tls.mutual ? 'mutual TLS' : 'TLS';
  logger.info({ host: config.host, grpc_port: grpcPort, http_port: httpPort, security }, 'listening');

  let stopping = false;
  const started = startTokenService(tokens, logger, () => stopping).then(async () => {
    await readiness.start();
    logger.info({ serving: readiness.serving() }, 'token service started');
  });
  return {
    logger,
    config,
    store,
    tokens,
    readiness,
    metrics,
    grpcServer,
    httpServer,
    callers,
    tls,
    tracing,
    grpcPort,
    httpPort,
    started,
    stopStarting: () => {
      stopping = true;
    },
  };
}

/** Drains and stops everything, within timeoutMs (TALLY_SHUTDOWN_TIMEOUT for the process). */
export async function stopTally(running: RunningTally, timeoutMs: number): Promise<Stopped> {
  const { logger, readiness } = running;
  const deadline = Date.now() + timeoutMs;
  const remaining = () => Math.max(0, deadline - Date.now());
  running.stopStarting();
  // First tell the probes, so traffic moves elsewhere, then stop taking calls.
  readiness.drain();
  const [grpcClean, httpClean] = await Promise.all([
    running.grpcServer.shutdown(remaining()),
    running.httpServer.shutdown(remaining()),
  ]);
  readiness.stop();
  // Every call has ended, so every span: the last ones are exported now, within the shutdown timeout.
  await running.tracing?.shutdown(remaining());
  running.callers.close();
  running.tls?.close();
  await running.tokens.stop();
  const storeClosed = await Promise.race([
    running.store.close().then(
      () => true,
      (error: unknown) => {
        logger.warn({ err: error }, 'closing the store failed');
        return false;
      },
    ),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), remaining()).unref()),
  ]);
  if (grpcClean && httpClean && storeClosed) logger.info('stopped');
  else logger.warn({ grpc_clean: grpcClean, http_clean: httpClean, store_closed: storeClosed }, 'stopped after cutting calls that did not finish in time');
  return { grpcClean, httpClean, storeClosed };
}
