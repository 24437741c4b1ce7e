// Prometheus metrics for both ports, scraped at GET /metrics.
//
// Cross-cutting order on every call: request id → logging → metrics → auth.
// Calls are counted from the same record the call log writes, which the
// transport makes after the handler settles, and the guard runs inside the
// handler: so refusals (UNAUTHENTICATED, PERMISSION_DENIED) are counted too.
//
// Label values come from fixed sets only (method names Tally knows, status
// code names, inactive reasons, operations, key ids that are public anyway,
// caller names from the callers file): never a token, a credential or
// anything a client typed.
//
// What moves on every call (calls, latencies, introspection outcomes, store
// operations, JWTs issued, scan-limit refusals) is kept as plain numbers
// (plain-metrics.ts) that prom-client reads only when /metrics is scraped: a
// call adds to series it finds by index (method × protocol × code; recordCall
// takes indices looked up once, countCalls looks the record's method and
// protocol up in a Map) or, for open sets, by one Map lookup on a name the
// caller already holds. Nothing joins or hashes a label set per call. What
// moves rarely (TLS handshakes, lease lapses, store changes) and what is read
// at scrape time (key ages) stay prom-client's own metrics.
//
// Why introspections were inactive is kept apart, in a registry of its own
// rendered only for callers with the `metrics` permission: /metrics needs no
// credential, and a reason counter moving as someone's introspection fails
// would tell an observer what the caller itself is never told.

import { Code } from '@connectrpc/connect';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { whenReady } from '../../core/awaitable.js';
import type { TokenService } from '../../core/token-service.js';
import type { PublicKeyInfo } from '../../core/types.js';
import type { StoreObserver } from '../../store/instrumented-store.js';
import type { ScanLimiter } from '../../auth/scan-limiter.js';
import type { StoreChange } from '../../store/index.js';
import type { CallLogger } from '../call/call-log.js';
import { codeName } from '../call/errors.js';
import { CounterFamily, HistogramFamily, type CounterSeries, type HistogramSeries } from './plain-metrics.js';
import type { TlsHandshakeOutcome } from '../tls/tls-handshakes.js';

export interface Metrics {
  readonly registry: Registry;
  /** A call logger that counts each call, then passes the record on. */
  countCalls(next: CallLogger): CallLogger;
  /** The index recordCall takes for a method: a known method's own, "other" for any other name. Look it up once, not per call. */
  methodIndex(method: string): number;
  /** The index recordCall takes for a protocol ("grpc", "connect", "grpc-web", "http"). Look it up once, not per call. */
  protocolIndex(protocol: string): number;
  /** Counts one call as countCalls does, given indices looked up beforehand: only number updates. */
  recordCall(methodIndex: number, protocolIndex: number, code: Code | 0, seconds: number): void;
  /** For store/instrumented-store.ts. */
  readonly observeStore: StoreObserver;
  /** The token service, with every introspection's outcome counted (whichever endpoint asked). */
  countIntrospections(tokens: TokenService): TokenService;
  /** The token service, with every JWT issued counted by the algorithm that signed it. */
  countIssues(tokens: TokenService): TokenService;
  /** Counts a TLS handshake on either port by the key exchange group it negotiated, or why it failed. */
  observeTlsHandshake(outcome: TlsHandshakeOutcome): void;
  /**
   * Reports each signing key's age at every scrape and, with a rotation
   * schedule, when the next scheduled rotation is due.
   */
  watchKeys(listKeys: () => Promise<PublicKeyInfo[]>, rotationIntervalMs?: number): void;
  /** For the Redis store: a replica's lease lapsed while its view was trusted. */
  readonly countLeaseLapse: () => void;
  /** The scan limiter, with every introspection it refuses counted by caller. */
  countScanLimitRefusals(limiter: ScanLimiter): ScanLimiter;
  /** Counts a store found to have lost data under this replica's view (see store/redis/replica-view.ts). */
  countStoreChange(change: StoreChange): void;
  /** The exposition text and its content type; with the reasons behind inactive introspections only when asked. */
  render(options?: { withInactiveReasons?: boolean }): Promise<{ contentType: string; body: string }>;
}

export interface MetricsOptions {
  /** Method names used as label values; any other becomes "other", so clients cannot invent series. */
  knownMethods: readonly string[];
  /** Wall clock for key ages; injected so tests can fix it. */
  now?: () => number;
}

// From a tenth of a millisecond (a cached introspection) to seconds (a store timeout).
const LATENCY_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Status codes a call can end with: 0 (ok) and Connect's codes, 1 to 16. */
const CODES = Code.Unauthenticated + 1;

export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const now = options.now ?? Date.now;

  const calls = new CounterFamily({
    name: 'tally_calls_total',
    help: 'Calls on either port by method, protocol and status code (gRPC code names; "ok" for success).',
    registry,
  });
  const callDuration = new HistogramFamily({
    name: 'tally_call_duration_seconds',
    help: 'Time from receiving a call to settling it, by method, protocol and status code.',
    buckets: LATENCY_BUCKETS,
    registry,
  });
  const introspections = new CounterFamily({
    name: 'tally_introspections_total',
    help: 'Introspection outcomes on any endpoint: result active or inactive.',
    registry,
  });
  const reasonsRegistry = new Registry();
  const inactiveReasons = new CounterFamily({
    name: 'tally_introspection_inactive_reasons_total',
    help: 'Why introspections were inactive, on any endpoint (shown only to callers with the metrics permission).',
    registry: reasonsRegistry,
  });
  const storeDuration = new HistogramFamily({
    name: 'tally_store_operation_duration_seconds',
    help: 'Store operations by name and outcome (ok or error).',
    buckets: LATENCY_BUCKETS,
    registry,
  });
  const storeErrors = new CounterFamily({
    name: 'tally_store_errors_total',
    help: 'Store operations that failed, by name.',
    registry,
  });

  // How much classical cryptography is still in use: JWTs per signing
  // algorithm, handshakes per key exchange group (X25519MLKEM768 is the
  // post-quantum hybrid; X25519 and secp* are classical).
  const jwtsIssued = new CounterFamily({
    name: 'tally_jwts_issued_total',
    help: 'JWTs issued, by the algorithm that signed them (ML-DSA-* are post-quantum, RFC 9964).',
    registry,
  });
  const tlsHandshakes = new Counter({
    name: 'tally_tls_handshakes_total',
    help: 'TLS handshakes completed on either port, by port and negotiated key exchange group (X25519MLKEM768: post-quantum hybrid).',
    labelNames: ['port', 'group'] as const,
    registers: [registry],
  });
  const tlsHandshakeFailures = new Counter({
    name: 'tally_tls_handshake_failures_total',
    help: 'TLS handshakes that failed on either port, by port and reason (no_shared_group: the client offered no group TALLY_TLS_GROUPS accepts).',
    labelNames: ['port', 'reason'] as const,
    registers: [registry],
  });
  const introspectionDuration = new HistogramFamily({
    name: 'tally_introspection_duration_seconds',
    help: 'Time the token service took to decide an introspection (any endpoint), by result: active or inactive.',
    buckets: LATENCY_BUCKETS,
    registry,
  });
  const leaseLapses = new Counter({
    name: 'tally_replica_lease_lapses_total',
    help: 'Times this replica found its lease had lapsed while it trusted its local view (a pause, or Redis out of reach); it then answers from Redis until caught up.',
    registers: [registry],
  });
  const scanLimitRefusals = new CounterFamily({
    name: 'tally_scan_limit_refusals_total',
    help: 'Introspections refused with RESOURCE_EXHAUSTED because the caller kept asking about unknown tokens (TALLY_SCAN_LIMIT_RATE), by caller name.',
    registry,
  });
  const storeChanges = new Counter({
    name: 'tally_store_changes_total',
    help: 'Times this replica found Redis came back with less than it had and rebuilt its local view: set-up-again (its data was lost), went-back (it lost the latest events).',
    labelNames: ['change'] as const,
    registers: [registry],
  });
  for (const change of ['set-up-again', 'went-back'] satisfies StoreChange[]) storeChanges.inc({ change }, 0);

  let listKeys: (() => Promise<PublicKeyInfo[]>) | undefined;
  let rotationIntervalMs: number | undefined;
  new Gauge({
    name: 'tally_signing_key_next_rotation_timestamp_seconds',
    help: 'When the scheduled rotation (TALLY_KEY_ROTATION_INTERVAL) is next due: the active key\'s creation plus the interval, in Unix seconds, by that key\'s algorithm (which the new key keeps). Absent without a schedule.',
    labelNames: ['algorithm'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      if (listKeys === undefined || rotationIntervalMs === undefined) return;
      const interval = rotationIntervalMs;
      // As the key manager decides (core/keys/key-manager.ts): an active key older than the interval is due.
      for (const key of (await listKeys().catch(() => [])).filter((candidate) => candidate.state === 'active')) {
        this.set({ algorithm: key.algorithm }, (key.createdAt + interval) / 1000);
      }
    },
  });
  new Gauge({
    name: 'tally_signing_key_age_seconds',
    help: 'Age of each key in the ring, by key id and state (active or retiring).',
    labelNames: ['kid', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      if (listKeys === undefined) return;
      // A scrape must not fail because the store is down: the store metrics say so already.
      const keys = await listKeys().catch(() => []);
      for (const key of keys) this.set({ kid: key.kid, state: key.state }, Math.max(0, (now() - key.createdAt) / 1000));
    },
  });

  // Each call's series, by protocol, then by method × code: the label values
  // are worked out when a series is first needed, never per call.
  const methodNames = [...new Set([...options.knownMethods, 'other'])];
  const methodIndexes = new Map(methodNames.map((method, index) => [method, index]));
  const otherMethod = methodIndexes.get('other')!;
  const protocolNames: string[] = [];
  const protocolIndexes = new Map<string, number>();
  const callSeries: (CallSeries | undefined)[][] = [];
  const methodIndex = (method: string) => methodIndexes.get(method) ?? otherMethod;
  const protocolIndex = (protocol: string) => {
    let index = protocolIndexes.get(protocol);
    if (index === undefined) {
      index = protocolNames.push(protocol) - 1;
      protocolIndexes.set(protocol, index);
      callSeries.push(new Array<CallSeries | undefined>(methodNames.length * CODES).fill(undefined));
    }
    return index;
  };
  const recordCall = (method: number, protocol: number, code: Code | 0, seconds: number) => {
    // A number outside Connect's codes counts as unknown rather than in another method's slot.
    const known = code >= 0 && code < CODES ? code : Code.Unknown;
    const slot = method * CODES + known;
    const byMethodAndCode = callSeries[protocol]!;
    let series = byMethodAndCode[slot];
    if (series === undefined) {
      const labels = { method: methodNames[method]!, protocol: protocolNames[protocol]!, code: codeName(known) };
      series = { calls: calls.series(labels), duration: callDuration.series(labels) };
      byMethodAndCode[slot] = series;
    }
    series.calls.inc();
    series.duration.observe(seconds);
  };

  const storeSeries = seriesByKey((operation) => ({
    ok: storeDuration.series({ operation, outcome: 'ok' }),
    error: storeDuration.series({ operation, outcome: 'error' }),
    errors: storeErrors.series({ operation }),
  }));
  const active = { count: introspections.series({ result: 'active' }), duration: introspectionDuration.series({ result: 'active' }) };
  const inactive = { count: introspections.series({ result: 'inactive' }), duration: introspectionDuration.series({ result: 'inactive' }) };
  const reasonSeries = seriesByKey((reason) => inactiveReasons.series({ reason }));
  const jwtSeries = seriesByKey((algorithm) => jwtsIssued.series({ algorithm }));
  const refusalSeries = seriesByKey((caller) => scanLimitRefusals.series({ caller }));

  return {
    registry,
    countCalls: (next) => (record) => {
      recordCall(methodIndex(record.method), protocolIndex(record.protocol), record.code, record.durationMs / 1000);
      next(record);
    },
    methodIndex,
    protocolIndex,
    recordCall,
    observeStore: (operation, seconds, failed) => {
      const series = storeSeries(operation);
      if (failed) {
        series.error.observe(seconds);
        series.errors.inc();
      } else {
        series.ok.observe(seconds);
      }
    },
    countIntrospections: (tokens) => ({
      ...tokens,
      introspect(input) {
        const started = performance.now();
        // Counted as it settles, at once for an answer from memory (core/awaitable.ts).
        return whenReady(tokens.introspect(input), (result) => {
          const seconds = (performance.now() - started) / 1000;
          if (result.active) {
            active.count.inc();
            active.duration.observe(seconds);
          } else {
            inactive.count.inc();
            reasonSeries(result.reason).inc();
            inactive.duration.observe(seconds);
          }
          return result;
        });
      },
    }),
    countIssues: (tokens) => ({
      ...tokens,
      async issue(input) {
        const issued = await tokens.issue(input);
        if (issued.algorithm !== undefined) jwtSeries(issued.algorithm).inc();
        return issued;
      },
    }),
    observeTlsHandshake: (outcome) => {
      if (outcome.ok) tlsHandshakes.inc({ port: outcome.port, group: outcome.group });
      else tlsHandshakeFailures.inc({ port: outcome.port, reason: outcome.reason });
    },
    watchKeys: (list, interval) => {
      listKeys = list;
      rotationIntervalMs = interval;
    },
    countLeaseLapse: () => leaseLapses.inc(),
    countScanLimitRefusals: (limiter) => ({
      ...limiter,
      allows(caller) {
        const allowed = limiter.allows(caller);
        if (!allowed) refusalSeries(caller).inc();
        return allowed;
      },
    }),
    render: async (renderOptions = {}) => {
      const body = await registry.metrics();
      if (renderOptions.withInactiveReasons !== true) return { contentType: registry.contentType, body };
      return { contentType: registry.contentType, body: `${body}${await reasonsRegistry.metrics()}` };
    },
    countStoreChange: (change) => storeChanges.inc({ change }),
  };
}

interface CallSeries {
  readonly calls: CounterSeries;
  readonly duration: HistogramSeries;
}

/** Memoises make per key: one Map lookup on a string the caller already holds (its hash is kept with it), no join. */
function seriesByKey<Series>(make: (key: string) => Series): (key: string) => Series {
  const made = new Map<string, Series>();
  return (key) => {
    let series = made.get(key);
    if (series === undefined) {
      series = make(key);
      made.set(key, series);
    }
    return series;
  };
}
