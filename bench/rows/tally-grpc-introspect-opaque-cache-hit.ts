import { measureTallyIntrospect } from '../lib/measure-tally-introspect.js';
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
