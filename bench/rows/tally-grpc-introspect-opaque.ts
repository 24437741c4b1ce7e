import { measureTallyIntrospect } from '../lib/measure-tally-introspect.js';
import type { Row } from '../lib/row.js';

export const tallyGrpcIntrospectOpaque: Row = {
  name: 'Tally gRPC Introspect, opaque, cache off',
  description: 'an opaque token minted by Issue, introspected over gRPC; TALLY_CACHE_SIZE=0, so every call reads Redis',
  async measure(context) {
    const [tally, issued] = await Promise.all([context.tally(), context.opaqueToken()]);
    return measureTallyIntrospect(context, { slug: 'tally-grpc-introspect-opaque', tally, issued });
  },
};
