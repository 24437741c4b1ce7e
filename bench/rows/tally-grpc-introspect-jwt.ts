import { measureTallyIntrospect } from '../lib/measure-tally-introspect.js';
import type { Row } from '../lib/row.js';

export const tallyGrpcIntrospectJwt: Row = {
  name: 'Tally gRPC Introspect, JWT',
  description:
    'a JWT minted by Issue (the default signing algorithm), introspected over gRPC by the Tally with the default cache: ' +
    'signature checked on every call, revocation marks read from the replica\'s local view',
  async measure(context) {
    const [tally, issued] = await Promise.all([context.cachedTally(), context.jwtToken()]);
    return measureTallyIntrospect(context, { slug: 'tally-grpc-introspect-jwt', tally, issued });
  },
};
