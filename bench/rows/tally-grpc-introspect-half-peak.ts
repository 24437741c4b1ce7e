import type { BenchContext } from '../lib/context.js';
import { measureTallyIntrospect } from '../lib/measure-tally-introspect.js';
import type { Measurement, Row } from '../lib/row.js';
import { measureBareGrpcIntrospect } from './bare-grpc-introspect.js';
import { tallyGrpcIntrospectOpaqueCacheHit } from './tally-grpc-introspect-opaque-cache-hit.js';
import { tallyGrpcIntrospectOpaque } from './tally-grpc-introspect-opaque.js';

// Latency at the peak is mostly queueing behind 160 streams in flight; the target
// is about the latency a caller sees when the server has headroom.
function atHalfPeak(peakRow: Row, slug: string, cached: boolean): Row {
  return {
    name: `${peakRow.name}, at half its peak rate`,
    description:
      `the same load as "${peakRow.name}" but offered at half the rate that row measured in this run ` +
      '(h2load --rps per connection, the same connections and streams): p99 is the latency with headroom',
    async measure(context): Promise<Measurement> {
      const { peak, ratePerConnection } = await halfPeakRate(context, peakRow);
      const [tally, issued] = await Promise.all([cached ? context.cachedTally() : context.tally(), context.opaqueToken()]);
      const measurement = await measureTallyIntrospect(context, { slug, tally, issued, ratePerConnection });
      return { ...measurement, notes: [offeredNote(context, ratePerConnection, peak), ...measurement.notes] };
    },
  };
}

async function halfPeakRate(context: BenchContext, peakRow: Row): Promise<{ peak: Measurement; ratePerConnection: number }> {
  const peak = await context.measure(peakRow);
  return { peak, ratePerConnection: Math.max(1, Math.floor(peak.callsPerSecond / 2 / context.settings.connections)) };
}

function offeredNote(context: BenchContext, ratePerConnection: number, peak: Measurement): string {
  const offered = ratePerConnection * context.settings.connections;
  return `offered ${offered.toLocaleString('en-US')} calls/s (${ratePerConnection} per connection) against the peak of ${Math.round(peak.callsPerSecond).toLocaleString('en-US')}`;
}

// h2load paces --rps in its own way, and at a few percent of its peak the bare server
// already answers in milliseconds: this row is what the harness alone adds at that rate.
export const bareGrpcIntrospectAtCacheHitHalfPeak: Row = {
  name: 'bare grpc-js, no-op Introspect, at the rate of the cache hit row at half its peak',
  description:
    'the bare server offered the same rate as the cache-hit row at half its peak (h2load --rps, the same settings): ' +
    'the latency the load generator and grpc-js add at that rate with no work behind them',
  async measure(context): Promise<Measurement> {
    const { peak, ratePerConnection } = await halfPeakRate(context, tallyGrpcIntrospectOpaqueCacheHit);
    const measurement = await measureBareGrpcIntrospect(context, 'bare-grpc-introspect-at-cache-hit-half-peak', ratePerConnection);
    return { ...measurement, notes: [offeredNote(context, ratePerConnection, peak), ...measurement.notes] };
  },
};

export const tallyGrpcIntrospectOpaqueCacheHitHalfPeak = atHalfPeak(tallyGrpcIntrospectOpaqueCacheHit, 'tally-grpc-introspect-opaque-cache-hit-half-peak', true);
export const tallyGrpcIntrospectOpaqueHalfPeak = atHalfPeak(tallyGrpcIntrospectOpaque, 'tally-grpc-introspect-opaque-half-peak', false);
