import { measureTallyIntrospect } from '../lib/measure-tally-introspect.js';
import type { Row } from '../lib/row.js';

export const tallyGrpcIntrospectOpaqueCacheHitTraced: Row = {
  name: 'Tally gRPC Introspect, opaque, cache hit, tracing on',
  description:
    'the cache-hit row with tracing on: OTEL_EXPORTER_OTLP_ENDPOINT set to a local sink and OTEL_TRACES_SAMPLER=always_on, ' +
    'so every call is a span with child spans for its store operations, exported as OTLP/protobuf; ' +
    'the cache-hit row above runs with no OTEL_* variable, as every other Tally row does',
  async measure(context) {
    const [tally, issued, sink] = await Promise.all([context.tracedTally(), context.opaqueToken(), context.otlpSink()]);
    try {
      const measurement = await measureTallyIntrospect(context, { slug: 'tally-grpc-introspect-opaque-cache-hit-traced', tally, issued });
      const { exports, bytes } = sink.received();
      return { ...measurement, notes: [...measurement.notes, `the sink received ${exports} exports, ${(bytes / 1_048_576).toFixed(1)} MiB`] };
    } finally {
      // Leased: left running, it would make every later Revoke wait for it too.
      await context.stopTally(tally);
    }
  },
};
