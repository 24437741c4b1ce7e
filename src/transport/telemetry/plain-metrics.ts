// Counters and histograms kept as plain numbers, read by prom-client only when
// /metrics is scraped.
//
// prom-client's own Counter and Histogram look the label set up again (hashing
// it) on every inc and observe, bound series included, and a cache-hit call
// makes several of those. Here each label set is a series object made once and
// kept by whoever updates it (in an array indexed by numbers worked out in
// advance, or in a Map for open sets such as caller names): an update adds to
// its numbers and nothing else. The family hands its series to prom-client's
// Registry in prom-client's own form when asked, so the exposition text is the
// one prom-client writes for its own classes: the same lines, with the series
// in the order of their first update (a series is listed from its first update
// on, as prom-client lists a label set), which test/transport/plain-metrics.test.ts
// checks against prom-client's Counter and Histogram.

import type { Metric, Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

/** The families' side of the Registry: what prom-client's registry.js reads of a metric. */
interface RegisteredFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<Snapshot>;
  reset(): void;
}

interface Snapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: Sample[];
}

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

function register(registry: Registry, family: RegisteredFamily): void {
  // The Registry reads a metric through its name, type, get() and reset()
  // (prom-client's lib/registry.js); its types list only prom-client's classes.
  registry.registerMetric(family as unknown as Metric);
}

export class CounterSeries {
  value = 0;

  constructor(
    readonly labels: Labels,
    private readonly listed: CounterSeries[],
  ) {}

  inc(): void {
    if (this.value === 0) this.listed.push(this);
    this.value += 1;
  }
}

export class HistogramSeries {
  /** Observations per bucket, not cumulative; a value above the last bound is counted only in count (+Inf). */
  readonly perBucket: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
    private readonly listed: HistogramSeries[],
  ) {
    this.perBucket = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    // prom-client throws here; a metric must not fail the call it measures.
    if (!Number.isFinite(value)) return;
    if (this.count === 0) this.listed.push(this);
    const bounds = this.bounds;
    for (let bucket = 0; bucket < bounds.length; bucket++) {
      if (value <= bounds[bucket]!) {
        this.perBucket[bucket]! += 1;
        break;
      }
    }
    this.sum += value;
    this.count += 1;
  }
}

interface FamilyOptions {
  name: string;
  help: string;
  /** Where /metrics finds the family. */
  registry: Registry;
}

export class CounterFamily implements RegisteredFamily {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly listed: CounterSeries[] = [];

  constructor(options: FamilyOptions) {
    this.name = options.name;
    this.help = options.help;
    register(options.registry, this);
  }

  /** A series for one label set, listed from its first inc on. Make each label set once and keep it: the family looks nothing up. */
  series(labels: Labels): CounterSeries {
    return new CounterSeries(labels, this.listed);
  }

  async get(): Promise<Snapshot> {
    const values: Sample[] = this.listed.map((series) => ({ labels: { ...series.labels }, value: series.value }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** As prom-client's reset: every series unlisted until its next update. */
  reset(): void {
    for (const series of this.listed) series.value = 0;
    this.listed.length = 0;
  }
}

export class HistogramFamily implements RegisteredFamily {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly bounds: readonly number[];
  private readonly listed: HistogramSeries[] = [];

  /** buckets: the upper bounds, ascending, without +Inf (as prom-client's Histogram takes them). */
  constructor(options: FamilyOptions & { buckets: readonly number[] }) {
    this.name = options.name;
    this.help = options.help;
    this.bounds = options.buckets;
    register(options.registry, this);
  }

  /** A series for one label set, listed from its first observation on. Make each label set once and keep it. */
  series(labels: Labels): HistogramSeries {
    return new HistogramSeries(labels, this.bounds, this.listed);
  }

  async get(): Promise<Snapshot> {
    // prom-client's Histogram.get(): per series its cumulative buckets, +Inf, sum and count, `le` first.
    const values: Sample[] = [];
    for (const series of this.listed) {
      let cumulative = 0;
      for (let bucket = 0; bucket < this.bounds.length; bucket++) {
        cumulative += series.perBucket[bucket]!;
        values.push({ labels: { le: this.bounds[bucket]!, ...series.labels }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { le: '+Inf', ...series.labels }, value: series.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...series.labels }, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...series.labels }, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const series of this.listed) {
      series.perBucket.fill(0);
      series.sum = 0;
      series.count = 0;
    }
    this.listed.length = 0;
  }
}
