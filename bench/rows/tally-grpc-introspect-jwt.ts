import { measureTallyIntrospect } from '../lib/measure-tally-introspect.js';
import type { Row } from '../lib/row.js';

export const tallyGrpcIntrospectJwt: Row = {
  name: 'Tally gRPC Introspect, JWT',
  description:
    'a JWT minted by Issue (the default signing algorithm, EdDSA), introspected over gRPC by the Tally with the default cache: ' +
    'signature checked on every call, revocation marks read from the replica\'s local view',
  async measure(context) {
    const [tally, issued] = await Promise.all([context.cachedTally(), context.jwtToken()]);
    return measureTallyIntrospect(context, { slug: 'tally-grpc-introspect-jwt', tally, issued });
  },
};

export const tallyGrpcIntrospectJwtMlDsa65: Row = {
  name: 'Tally gRPC Introspect, JWT ML-DSA-65',
  description:
    'as the row above, for a JWT Issue signed with ML-DSA-65 (post-quantum, RFC 9964) beside the default EdDSA key: ' +
    'a larger token to receive and an ML-DSA verification on every call',
  async measure(context) {
    const [tally, issued] = await Promise.all([context.cachedTally(), context.jwtToken('ML-DSA-65')]);
    return measureTallyIntrospect(context, { slug: 'tally-grpc-introspect-jwt-ml-dsa-65', tally, issued });
  },
};
