// The plain-number counters and histograms must scrape exactly as prom-client's
// own Counter and Histogram do for the same updates: dashboards, alerts and the
// bench read that text, so a changed line, label order, bucket or series order
// would break them silently.
import fc from 'fast-check';
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CounterFamily, HistogramFamily, type CounterSeries, type HistogramSeries } from '../../src/transport/telemetry/plain-metrics.js';

const BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const LABEL_SETS = [
  { method: 'tally.v1.TokenService/Introspect', protocol: 'grpc', code: 'ok' },
  { method: 'other', protocol: 'grpc-web', code: 'invalid_argument' },
  { method: 'POST /oauth2/introspect', protocol: 'http', code: 'unauthenticated' },
  { method: 'a "quoted"\\name\nwith a newline', protocol: 'connect', code: 'ok' },
];

type Update = { kind: 'inc'; series: number } | { kind: 'observe'; series: number; value: number } | { kind: 'reset' };

const update: fc.Arbitrary<Update> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('inc' as const), series: fc.nat({ max: LABEL_SETS.length - 1 }) }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('observe' as const),
      series: fc.nat({ max: LABEL_SETS.length - 1 }),
      // On the bounds, between them, above the last and below zero.
      value: fc.oneof(fc.constantFrom(...BOUNDS, 0, -0, 7, 1e9), fc.double({ min: -1, max: 10, noNaN: true })),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
);

/** The same updates on prom-client's classes and on the plain families, each in a registry of its own. */
function applyBoth(updates: Update[]): { promClient: Registry; plain: Registry } {
  const promClient = new Registry();
  const counter = new Counter({ name: 'calls_total', help: 'Calls, "quoted" \\ and\nnewline.', labelNames: ['method', 'protocol', 'code'] as const, registers: [promClient] });
  const histogram = new Histogram({ name: 'call_seconds', help: 'Call time.', labelNames: ['method', 'protocol', 'code'] as const, buckets: BOUNDS, registers: [promClient] });
  const boundCounters = LABEL_SETS.map((labels) => counter.labels(labels));
  const boundHistograms = LABEL_SETS.map((labels) => histogram.labels(labels));

  const plain = new Registry();
  const counters = new CounterFamily({ name: 'calls_total', help: 'Calls, "quoted" \\ and\nnewline.', registry: plain });
  const histograms = new HistogramFamily({ name: 'call_seconds', help: 'Call time.', buckets: BOUNDS, registry: plain });
  const counterSeries: CounterSeries[] = LABEL_SETS.map((labels) => counters.series(labels));
  const histogramSeries: HistogramSeries[] = LABEL_SETS.map((labels) => histograms.series(labels));

  for (const step of updates) {
    if (step.kind === 'inc') {
      boundCounters[step.series]!.inc();
      counterSeries[step.series]!.inc();
    } else if (step.kind === 'observe') {
      boundHistograms[step.series]!.observe(step.value);
      histogramSeries[step.series]!.observe(step.value);
    } else {
      promClient.resetMetrics();
      plain.resetMetrics();
    }
  }
  return { promClient, plain };
}

describe('plain-number metrics', () => {
  it('scrape as prom-client\'s Counter and Histogram do after the same updates: lines, labels, buckets and series order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(update, { maxLength: 80 }), async (updates) => {
        const { promClient, plain } = applyBoth(updates);
        expect(await plain.metrics()).toBe(await promClient.metrics());
      }),
      { numRuns: 300 },
    );
  });

  it('lists no series before its first update, as prom-client does', async () => {
    const { promClient, plain } = applyBoth([]);
    const text = await plain.metrics();
    expect(text).toBe(await promClient.metrics());
    expect(text).not.toMatch(/^calls_total\{/m);
    expect(text).not.toMatch(/^call_seconds_/m);
  });

  it('drops an observation that is not a finite number instead of throwing into the call it measures', async () => {
    const registry = new Registry();
    const series = new HistogramFamily({ name: 'call_seconds', help: 'Call time.', buckets: BOUNDS, registry }).series({ method: 'm' });
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) expect(() => series.observe(value)).not.toThrow();
    expect(await registry.metrics()).not.toMatch(/^call_seconds_/m);
    series.observe(0.002);
    const text = await registry.metrics();
    expect(text).toContain('call_seconds_count{method="m"} 1\n');
    expect(text).toContain('call_seconds_sum{method="m"} 0.002\n');
  });
});
