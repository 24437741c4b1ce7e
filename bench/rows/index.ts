// The table, top to bottom. The first row is the baseline every ratio divides by,
// measured in the same run on the same machine.
//
// Rows planned next, each one module here: Tally with the local cache on (cache
// hit), a JWT introspected, Connect JSON and POST /oauth2/introspect under wrk,
// node-oidc-provider's introspection as a peer, jose's jwtVerify in-process, and
// the latency of Revoke with replicas holding leases.
import type { Row } from '../lib/row.js';
import { bareGrpcIntrospect } from './bare-grpc-introspect.js';
import { tallyGrpcIntrospectOpaque } from './tally-grpc-introspect-opaque.js';

export const rows: readonly [Row, ...Row[]] = [bareGrpcIntrospect, tallyGrpcIntrospectOpaque];
