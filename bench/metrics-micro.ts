// node --import tsx bench/metrics-micro.ts: what the metrics of one cache-hit Introspect cost
// the thread that answers it, in µs per call, in one process:
// - prom-client's bound series as metrics.ts used them before it kept plain numbers (a join
//   and a Map lookup for the call's series, then labels hashed again by every inc/observe):
//   the reference, the same in any run;
// - Metrics.countCalls (the call log's record) and Metrics.recordCall (indices looked up
//   once), and Metrics.countIntrospections less the same await without it (and, of that,
//   the two clock readings that time the introspection);
// - one cache-hit call's worth: the call counted plus the introspection counted.
// Each figure is the median of several timed rounds after a warm-up; a few hundredths of a
// µs either way are noise on a shared machine.
import { Counter, Histogram, Registry } from 'prom-client';
import { REQUIRED_PERMISSION } from '../src/auth/authorize.js';
import type { TokenService } from '../src/core/token-service.js';
import type { CallRecord } from '../src/transport/call/call-log.js';
import { createMetrics } from '../src/transport/telemetry/metrics.js';

const ROUNDS = 11;
const SYNC_CALLS = 1_000_000;
const ASYNC_CALLS = 200_000;
const INTROSPECT = 'tally.v1.TokenService/Introspect';
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Median µs per call of `run(calls)` over the rounds, after one untimed round. */
async function microsecondsPerCall(calls: number, run: (calls: number) => unknown): Promise<number> {
  await run(calls);
  const perCall: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const started = performance.now();
    await run(calls);
    perCall.push(((performance.now() - started) * 1000) / calls);
  }
  perCall.sort((a, b) => a - b);
  return perCall[Math.floor(ROUNDS / 2)]!;
}

/** Median of the µs per call `measured` takes beyond `baseline`, the two timed back to back in each round. */
async function microsecondsMoreThan(calls: number, baseline: (calls: number) => Promise<unknown>, measured: (calls: number) => Promise<unknown>): Promise<number> {
  await baseline(calls);
  await measured(calls);
  const differences: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const started = performance.now();
    await baseline(calls);
    const between = performance.now();
    await measured(calls);
    differences.push(((performance.now() - between - (between - started)) * 1000) / calls);
  }
  differences.sort((a, b) => a - b);
  return differences[Math.floor(ROUNDS / 2)]!;
}

/** The per-call work of metrics.ts before plain numbers, on prom-client's own series. */
function promClientBoundSeries(): (method: string, protocol: string, code: string, callSeconds: number, introspectionSeconds: number) => void {
  const registry = new Registry();
  const calls = new Counter({ name: 'calls_total', help: 'h', labelNames: ['method', 'protocol', 'code'] as const, registers: [registry] });
  const callDuration = new Histogram({ name: 'call_duration_seconds', help: 'h', labelNames: ['method', 'protocol', 'code'] as const, buckets: LATENCY_BUCKETS, registers: [registry] });
  const introspections = new Counter({ name: 'introspections_total', help: 'h', labelNames: ['result'] as const, registers: [registry] });
  const introspectionDuration = new Histogram({ name: 'introspection_duration_seconds', help: 'h', labelNames: ['result'] as const, buckets: LATENCY_BUCKETS, registers: [registry] });
  const bound = new Map<string, { calls: { inc(): void }; duration: { observe(value: number): void } }>();
  const activeSeries = introspections.labels({ result: 'active' });
  const activeDuration = introspectionDuration.labels({ result: 'active' });
  return (method, protocol, code, callSeconds, introspectionSeconds) => {
    const key = [method, protocol, code].join('\u0000');
    let series = bound.get(key);
    if (series === undefined) {
      const labels = { method, protocol, code };
      series = { calls: calls.labels(labels), duration: callDuration.labels(labels) };
      bound.set(key, series);
    }
    series.calls.inc();
    series.duration.observe(callSeconds);
    activeSeries.inc();
    activeDuration.observe(introspectionSeconds);
  };
}

const metrics = createMetrics({ knownMethods: Object.keys(REQUIRED_PERMISSION) });
const logCall = metrics.countCalls(() => {});
const record: CallRecord = { method: INTROSPECT, protocol: 'grpc', code: 0, durationMs: 0.21, details: { requestId: undefined, caller: 'bench' } as unknown as CallRecord['details'] };
const introspectMethod = metrics.methodIndex(INTROSPECT);
const grpcProtocol = metrics.protocolIndex('grpc');

const active = Promise.resolve({ active: true } as Awaited<ReturnType<TokenService['introspect']>>);
const bare = { introspect: () => active } as unknown as TokenService;
const counted = metrics.countIntrospections(bare);
const input = { token: 'tly_bench' } as Parameters<TokenService['introspect']>[0];
const awaitOnly = { async introspect(request: typeof input) { return await bare.introspect(request); } };

const reference = promClientBoundSeries();
const rows: [string, number][] = [];
rows.push(['prom-client bound series (metrics.ts before): call + introspection', await microsecondsPerCall(SYNC_CALLS, (calls) => {
  for (let call = 0; call < calls; call++) reference(INTROSPECT, 'grpc', 'ok', 0.00021, 0.00004);
})]);
const countCalls = await microsecondsPerCall(SYNC_CALLS, (calls) => {
  for (let call = 0; call < calls; call++) logCall(record);
});
rows.push(['Metrics.countCalls(record)', countCalls]);
const recordCall = await microsecondsPerCall(SYNC_CALLS, (calls) => {
  for (let call = 0; call < calls; call++) metrics.recordCall(introspectMethod, grpcProtocol, 0, 0.00021);
});
rows.push(['Metrics.recordCall(indices)', recordCall]);
const introspections = await microsecondsMoreThan(ASYNC_CALLS, async (calls) => {
  for (let call = 0; call < calls; call++) await awaitOnly.introspect(input);
}, async (calls) => {
  for (let call = 0; call < calls; call++) await counted.introspect(input);
});
rows.push(['Metrics.countIntrospections, less the await', introspections]);
let readings = 0;
rows.push(['of which its two performance.now() readings', await microsecondsPerCall(SYNC_CALLS, (calls) => {
  for (let call = 0; call < calls; call++) readings += performance.now() - performance.now();
  return readings;
})]);
rows.push(['one cache-hit call: countCalls + countIntrospections', countCalls + introspections]);
rows.push(['one cache-hit call: recordCall + countIntrospections', recordCall + introspections]);

console.log(`node ${process.version}, ${ROUNDS} rounds, median\n`);
console.log('| what | µs per call |\n|---|---:|');
for (const [what, microseconds] of rows) console.log(`| ${what} | ${microseconds.toFixed(3)} |`);
