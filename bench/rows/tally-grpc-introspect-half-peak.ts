import { measureTallyIntrospect } from '../lib/measure-tally-introspect.js';
import type { Measurement, Row } from '../lib/row.js';
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
      const peak = await context.measure(peakRow);
      const [tally, issued] = await Promise.all([cached ? context.cachedTally() : context.tally(), context.opaqueToken()]);
      const ratePerConnection = Math.max(1, Math.floor(peak.callsPerSecond / 2 / context.settings.connections));
      const measurement = await measureTallyIntrospect(context, { slug, tally, issued, ratePerConnection });
      const offered = ratePerConnection * context.settings.connections;
      return {
        ...measurement,
        notes: [
          `offered ${offered.toLocaleString('en-US')} calls/s (${ratePerConnection} per connection) against the peak of ${Math.round(peak.callsPerSecond).toLocaleString('en-US')}`,
          ...measurement.notes,
        ],
      };
    },
  };
}

export const tallyGrpcIntrospectOpaqueCacheHitHalfPeak = atHalfPeak(tallyGrpcIntrospectOpaqueCacheHit, 'tally-grpc-introspect-opaque-cache-hit-half-peak', true);
export const tallyGrpcIntrospectOpaqueHalfPeak = atHalfPeak(tallyGrpcIntrospectOpaque, 'tally-grpc-introspect-opaque-half-peak', false);
