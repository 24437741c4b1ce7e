import { measureGrpcUnary } from '../lib/measure-grpc-unary.js';
import { measureTallyIntrospect, tallyIntrospectCall } from '../lib/measure-tally-introspect.js';
import type { Row } from '../lib/row.js';

export const tallyGrpcIntrospectOpaqueCacheHit: Row = {
  name: 'Tally gRPC Introspect, opaque, cache hit',
  description:
    'the same opaque token, introspected over gRPC by a Tally with the default cache (TALLY_CACHE_SIZE unset): ' +
    'after the first call every answer comes from the replica\'s cache while its lease is live',
  async measure(context) {
    const [tally, issued] = await Promise.all([context.cachedTally(), context.opaqueToken()]);
    return measureTallyIntrospect(context, { slug: 'tally-grpc-introspect-opaque-cache-hit', tally, issued });
  },
};

export const tallyGrpcIntrospectOpaqueCacheHitOneInFlight: Row = {
  name: 'one call in flight: Tally gRPC Introspect, opaque, cache hit',
  description: 'as the cache-hit row, with one connection and one call at a time (h2load -c 1 -m 1): compare its p50 with the bare server\'s',
  async measure(context) {
    const [tally, issued] = await Promise.all([context.cachedTally(), context.opaqueToken()]);
    return measureGrpcUnary(context, { ...tallyIntrospectCall('tally-grpc-introspect-opaque-cache-hit-one', tally, issued), connections: 1, streamsPerConnection: 1 });
  },
};
