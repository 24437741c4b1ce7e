// The table, top to bottom. The first row is the baseline every ratio divides by,
// measured in the same run on the same machine. Rows that reuse a process run
// next to each other; the Revoke row comes last because it starts two more
// leased replicas, which would otherwise idle beside every later row; only the
// baseline's repeat, which shows the machine's drift, follows it.
import type { Row } from '../lib/row.js';
import { bareGrpcIntrospectAgain } from './bare-grpc-introspect-again.js';
import { bareGrpcIntrospect } from './bare-grpc-introspect.js';
import { joseJwtVerifyEdDsa, joseJwtVerifyEs256, joseJwtVerifyMlDsa65 } from './jose-jwt-verify.js';
import { oidcProviderIntrospect } from './oidc-provider-introspect.js';
import { tallyConnectJsonIntrospect } from './tally-connect-json-introspect.js';
import {
  bareGrpcIntrospectAtCacheHitHalfPeak,
  tallyGrpcIntrospectOpaqueCacheHitHalfPeak,
  tallyGrpcIntrospectOpaqueHalfPeak,
} from './tally-grpc-introspect-half-peak.js';
import { tallyGrpcIntrospectJwt, tallyGrpcIntrospectJwtMlDsa65 } from './tally-grpc-introspect-jwt.js';
import { tallyGrpcIssueJwtEdDsa, tallyGrpcIssueJwtMlDsa65 } from './tally-grpc-issue-jwt.js';
import { tallyGrpcIntrospectOpaqueCacheHit } from './tally-grpc-introspect-opaque-cache-hit.js';
import { tallyGrpcIntrospectOpaque } from './tally-grpc-introspect-opaque.js';
import { tallyOauth2Introspect } from './tally-oauth2-introspect.js';
import { tallyRevokeLeasedReplicas } from './tally-revoke-leased-replicas.js';

export const rows: readonly [Row, ...Row[]] = [
  bareGrpcIntrospect,
  tallyGrpcIntrospectOpaque,
  tallyGrpcIntrospectOpaqueHalfPeak,
  tallyGrpcIntrospectOpaqueCacheHit,
  tallyGrpcIntrospectOpaqueCacheHitHalfPeak,
  bareGrpcIntrospectAtCacheHitHalfPeak,
  tallyGrpcIntrospectJwt,
  tallyGrpcIntrospectJwtMlDsa65,
  tallyGrpcIssueJwtEdDsa,
  tallyGrpcIssueJwtMlDsa65,
  tallyConnectJsonIntrospect,
  tallyOauth2Introspect,
  oidcProviderIntrospect,
  joseJwtVerifyEs256,
  joseJwtVerifyEdDsa,
  joseJwtVerifyMlDsa65,
  tallyRevokeLeasedReplicas,
  bareGrpcIntrospectAgain,
];
