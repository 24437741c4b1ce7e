// Prometheus metrics for both ports, scraped at GET /metrics.
//
// Cross-cutting order on every call: request id → logging → metrics → auth.
// Calls are counted from the same record the call log writes, which the
// transport makes after the handler settles, and the guard runs inside the
// handler: so refusals (UNAUTHENTICATED, PERMISSION_DENIED) are counted too.
//
// Label values come from fixed sets only (method names Tally knows, status
// code names, inactive reasons, operations, key ids that are public anyway):
// never a token, a credential or anything a client typed.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TokenService } from '../core/token-service.js';
import type { PublicKeyInfo } from '../core/types.js';
import type { StoreObserver } from '../store/instrumented-store.js';
import type { StoreChange } from '../store/index.js';
import type { CallLogger } from './call-log.js';
import { codeName } from './errors.js';

export interface Metrics {
  readonly registry: Registry;
  /** A call logger that counts each call, then passes the record on. */
  countCalls(next: CallLogger): CallLogger;
  /** For store/instrumented-store.ts. */
  readonly observeStore: StoreObserver;
  /** The token service, with every introspection's outcome counted (whichever endpoint asked). */
  countIntrospections(tokens: TokenService): TokenService;
  /** Reports each signing key's age at every scrape. */
  watchKeys(listKeys: () => Promise<PublicKeyInfo[]>): void;
  /** Counts a store found to have lost data under this replica's view (see store/redis/replica-view.ts). */
  countStoreChange(change: StoreChange): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

export interface MetricsOptions {
  /** Method names used as label values; any other becomes "other", so clients cannot invent series. */
  knownMethods: readonly string[];
  /** Wall clock for key ages; injected so tests can fix it. */
  now?: () => number;
}

// From a tenth of a millisecond (a cached introspection) to seconds (a store timeout).
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const known = new Set(options.knownMethods);
  const now = options.now ?? Date.now;

  const calls = new Counter({
    name: 'tally_calls_total',
    help: 'Calls on either port by method, protocol and status code (gRPC code names; "ok" for success).',
    labelNames: ['method', 'protocol', 'code'] as const,
    registers: [registry],
  });
  const callDuration = new Histogram({
    name: 'tally_call_duration_seconds',
    help: 'Time from receiving a call to settling it, by method, protocol and status code.',
    labelNames: ['method', 'protocol', 'code'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const introspections = new Counter({
    name: 'tally_introspections_total',
    help: 'Introspection outcomes on any endpoint: result active or inactive, and why inactive.',
    labelNames: ['result', 'reason'] as const,
    registers: [registry],
  });
  const storeDuration = new Histogram({
    name: 'tally_store_operation_duration_seconds',
    help: 'Store operations by name and outcome (ok or error).',
    labelNames: ['operation', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const storeErrors = new Counter({
    name: 'tally_store_errors_total',
    help: 'Store operations that failed, by name.',
    labelNames: ['operation'] as const,
    registers: [registry],
  });

  const storeChanges = new Counter({
    name: 'tally_store_changes_total',
    help: 'Times this replica found Redis came back with less than it had and rebuilt its local view: set-up-again (its data was lost), went-back (it lost the latest events).',
    labelNames: ['change'] as const,
    registers: [registry],
  });
  for (const change of ['set-up-again', 'went-back'] satisfies StoreChange[]) storeChanges.inc({ change }, 0);

  let listKeys: (() => Promise<PublicKeyInfo[]>) | undefined;
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

  // prom-client looks a label set up on every observation; on the hot path
  // each series is bound once instead. The label values come from fixed sets,
  // so these maps stay small.
  const callSeries = boundSeries((method: string, protocol: string, code: string) => {
    const labels = { method, protocol, code };
    return { calls: calls.labels(labels), duration: callDuration.labels(labels) };
  });
  const storeSeries = boundSeries((operation: string, outcome: string) => storeDuration.labels({ operation, outcome }));
  const introspectionSeries = boundSeries((result: string, reason: string) => introspections.labels({ result, reason }));

  return {
    registry,
    countCalls: (next) => (record) => {
      const series = callSeries(known.has(record.method) ? record.method : 'other', record.protocol, codeName(record.code));
      series.calls.inc();
      series.duration.observe(record.durationMs / 1000);
      next(record);
    },
    observeStore: (operation, seconds, failed) => {
      storeSeries(operation, failed ? 'error' : 'ok').observe(seconds);
      if (failed) storeErrors.inc({ operation });
    },
    countIntrospections: (tokens) => ({
      ...tokens,
      async introspect(input) {
        const result = await tokens.introspect(input);
        (result.active ? introspectionSeries('active', '') : introspectionSeries('inactive', result.reason)).inc();
        return result;
      },
    }),
    watchKeys: (list) => {
      listKeys = list;
    },
    countStoreChange: (change) => storeChanges.inc({ change }),
    render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}

/** Memoises make per combination of label values. */
function boundSeries<Values extends string[], Series>(make: (...values: Values) => Series): (...values: Values) => Series {
  const made = new Map<string, Series>();
  return (...values) => {
    const key = values.join('\u0000');
    let series = made.get(key);
    if (series === undefined) {
      series = make(...values);
      made.set(key, series);
    }
    return series;
  };
}
