// The composition root: configuration → store → token service → both servers,
// and the way back down on SIGTERM or SIGINT. The only file that knows every
// part; nothing imports it.

import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig, renderHelp, renderSettingsTable, type Config } from './config.js';
import { KeyRingError } from './core/errors.js';
import type { Store } from './core/ports.js';
import { deriveSecrets } from './core/secrets.js';
import { createTokenService, type TokenService } from './core/token-service.js';
import { createRevocationWatch } from './core/revocation-watch.js';
import { createLogger, type Logger } from './log.js';
import { createStore } from './store/index.js';
import { SETTINGS_README_SECTION, type SettingsReport, type StoreChange } from './store/index.js';
import { createCallLogger } from './transport/call-log.js';
import { createGrpcServer, type GrpcServer } from './transport/grpc/server.js';
import { createHttpServer, type HttpServer } from './transport/http/server.js';
import { createReadiness, type Readiness } from './transport/readiness.js';
import { createTokenServiceHandlers } from './transport/service.js';
import { createGuard, guardService } from './transport/guard.js';
import { watchCallers, type CallersWatcher } from './auth/callers-watcher.js';
import { TokenService as TokenServiceDescriptor } from './gen/tally/v1/token_service_pb.js';
import { Authorization } from './gen/envoy/service/auth/v3/external_auth_pb.js';
import { REQUIRED_PERMISSION } from './auth/authorize.js';
import { instrumentStore } from './store/instrumented-store.js';
import { createMetrics, type Metrics } from './transport/metrics.js';
import { createExtAuthzHandlers } from './transport/grpc/ext-authz.js';
import { createStandardRoutes } from './transport/http/standard-routes.js';
import { INTERNAL_JWKS_PATH, JWKS_PATH, staleIfErrorMs } from './transport/http/jwks.js';
import { createScanLimiter } from './auth/scan-limiter.js';
import { systemClock } from './core/system.js';
import { watchTlsFiles, type TlsFiles } from './transport/tls-files.js';
import { validateService } from './transport/validate.js';

interface Running {
  logger: Logger;
  config: Config;
  store: Store;
  tokens: TokenService;
  readiness: Readiness;
  grpcServer: GrpcServer;
  httpServer: HttpServer;
  callers: CallersWatcher;
  tls: TlsFiles | undefined;
  /** Settles when the token service has started, or start-up was abandoned. */
  started: Promise<void>;
  stopStarting(): void;
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

async function start(config: Config, logger: Logger): Promise<Running> {
  if (config.redisUrl === undefined) {
    logger.warn(
      'TALLY_REDIS_URL is not set: tokens, revocations and keys live in this process only; nothing is shared with other replicas and everything is lost when it exits',
    );
  }
  const viewError = throttled(10_000, (error) => logger.warn({ err: error }, 'the replica view could not follow Redis'));
  const metrics = createMetrics({ knownMethods: [...Object.keys(REQUIRED_PERMISSION), `GET ${JWKS_PATH}`, `GET ${INTERNAL_JWKS_PATH}`] });
  const store = instrumentStore(createStore({
    redisUrl: config.redisUrl,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    cacheSize: config.cacheSize,
    leaseMs: config.leaseMs,
    holderLeaseMs: config.clientLeaseMs,
    replicasToWait: config.redisWaitReplicas ?? (config.redisUrl?.startsWith('redis+sentinel://') ? 1 : 0),
    onConnectionError: throttled(10_000, (error) => logger.warn({ err: error }, 'Redis connection error')),
    onBackgroundError: (error) => viewError(error as Error),
    onLeaseLapsed: metrics.countLeaseLapse,
    onStoreChange: (change) => {
      metrics.countStoreChange(change);
      logger.error({ change }, STORE_CHANGE_MESSAGES[change]);
    },
    onSettingsChecked: settingsLogger(logger),
  }), metrics.observeStore);
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
    maxClaimsBytes: config.maxClaimsBytes,
    maxTokenLength: config.maxTokenLength,
    onBackgroundError: (error, task) => logger.warn({ err: error, task }, 'background work failed'),
    onClockOffset: (offsetMs) =>
      offsetMs === 0
        ? logger.info('this replica\'s clock is back within TALLY_CLOCK_SKEW of the store\'s')
        : logger.warn({ offset_ms: Math.round(offsetMs) }, 'this replica\'s clock is more than TALLY_CLOCK_SKEW off the store\'s; Tally judges token times on the store\'s clock, so answers stay exact, but fix the clock (NTP)'),
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
  // Per call: the guard (who calls, may they), then the proto's validation rules, then the handler.
  // Clients keeping a local view (WatchRevocations) watch elsewhere once this replica drains.
  const revocationWatch = createRevocationWatch({ store });
  readiness.onChange(() => readiness.draining() && revocationWatch.endAll());
  const handlers = guardService(
    TokenServiceDescriptor,
    validateService(TokenServiceDescriptor, createTokenServiceHandlers(tokens, { scanLimiter, revocationWatch })),
    guard,
  );
  // Order on every call: request id → logging → metrics → auth (the guard, inside the handlers), so refusals are counted.
  const logCall = metrics.countCalls(createCallLogger(logger));
  const authorization = guardService(Authorization, createExtAuthzHandlers({ tokens, internalJwtTtlMs: config.phantomTokenTtlMs, scanLimiter }), guard);
  const routes = createStandardRoutes({ tokens, guard, logCall, metrics, maxBodyBytes: config.maxMessageBytes, jwksMaxAgeMs: config.jwksMaxAgeMs,
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
    guard,
    readiness,
    logCall,
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
    logCall,
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
    grpcServer,
    httpServer,
    callers,
    tls,
    started,
    stopStarting: () => {
      stopping = true;
    },
  };
}

/** Resolves with the exit code: 0 when everything finished within the timeout. */
async function stop(running: Running): Promise<number> {
  const { logger, readiness } = running;
  const deadline = Date.now() + running.config.shutdownTimeoutMs;
  const remaining = () => Math.max(0, deadline - Date.now());
  running.stopStarting();
  // First tell the probes, so traffic moves elsewhere, then stop taking calls.
  readiness.drain();
  const [grpcClean, httpClean] = await Promise.all([
    running.grpcServer.shutdown(remaining()),
    running.httpServer.shutdown(remaining()),
  ]);
  readiness.stop();
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
  const clean = grpcClean && httpClean && storeClosed;
  if (clean) logger.info('stopped');
  else logger.warn({ grpc_clean: grpcClean, http_clean: httpClean, store_closed: storeClosed }, 'stopped after cutting calls that did not finish in time');
  return clean ? 0 : 1;
}

function exit(logger: Logger | undefined, code: number): never {
  logger?.flush();
  process.exit(code);
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(renderHelp());
    return;
  }
  if (argv.includes('--settings-table')) {
    process.stdout.write(renderSettingsTable());
    return;
  }
  if (argv.length > 0) {
    process.stderr.write(`unknown argument ${JSON.stringify(argv[0])}; settings are TALLY_* environment variables (see --help)\n`);
    process.exit(2);
  }

  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`tally: ${error.message}\n`);
    process.exit(1);
  }
  const logger = createLogger({ level: config.logLevel });

  // Handlers catch everything a request can cause, so reaching here is a bug:
  // logged, and the process drains rather than dying mid-call.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

  let running: Running;
  try {
    running = await start(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'start-up failed');
    exit(logger, 1);
  }

  let stopping: Promise<number> | undefined;
  const shutdown = (reason: string, code: number) => {
    if (stopping !== undefined) {
      logger.warn({ reason }, 'stopping at once: asked again while draining');
      exit(logger, 1);
    }
    logger.info({ reason, timeout_ms: config.shutdownTimeoutMs }, 'draining');
    // The last word if a step hangs: never outlive the timeout by much.
    setTimeout(() => {
      logger.error('shutdown did not finish in time; exiting');
      exit(logger, 1);
    }, config.shutdownTimeoutMs + 1_000).unref();
    stopping = stop(running).then(
      (result) => exit(logger, Math.max(result, code)),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        return exit(logger, 1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM', 0));
  process.on('SIGINT', () => shutdown('SIGINT', 0));
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception');
    shutdown('uncaught exception', 1);
  });

  running.started.catch((error: unknown) => {
    if (stopping !== undefined) return;
    logger.fatal({ err: error }, 'the token service cannot start');
    shutdown('start-up failed', 1);
  });
}

await main(process.argv.slice(2));
