// The table, top to bottom. The first row is the baseline every ratio divides by,
// measured in the same run on the same machine. Rows that reuse a process run
// next to each other; the Revoke row comes last because it starts two more
// leased replicas (and the one with clients' local views after it, on the same
// replicas), which would otherwise idle beside every later row; only the
// baseline's repeat, which shows the machine's drift, follows it. The open-loop
// rows offer shares of the baseline's peak, the bare server's first: they check the
// generator before it measures Tally. Tally's cache-off open-loop rows come last
// but for the baseline's repeat: offered more than it can answer (half the bare
// peak is above its own), the cache-off Tally leaves Redis and the cached Tally
// a backlog that landed on every row after it (the RFC 7662 row measured 4,394
// calls/s behind them and 31,741 alone, in runs minutes apart).
import type { Row } from '../lib/row.js';
import { bareGrpcIntrospectAgain } from './bare-grpc-introspect-again.js';
import { bareGrpcIntrospect, bareGrpcIntrospectOneInFlight } from './bare-grpc-introspect.js';
import { joseJwtVerifyEdDsa, joseJwtVerifyEs256, joseJwtVerifyMlDsa65 } from './jose-jwt-verify.js';
import { oidcProviderIntrospect } from './oidc-provider-introspect.js';
import { tallyConnectJsonIntrospect } from './tally-connect-json-introspect.js';
import {
  openLoopBareHalf,
  openLoopCacheHitHalf,
  openLoopCacheHitQuarter,
  openLoopCacheOffHalf,
  openLoopCacheOffQuarter,
  openLoopH2loadCheck,
  openLoopSelfCheck,
} from './open-loop.js';
import { tallyGrpcIntrospectJwt, tallyGrpcIntrospectJwtMlDsa65 } from './tally-grpc-introspect-jwt.js';
import { tallyGrpcIssueJwtEdDsa, tallyGrpcIssueJwtMlDsa65 } from './tally-grpc-issue-jwt.js';
import { tallyGrpcIntrospectOpaqueCacheHit, tallyGrpcIntrospectOpaqueCacheHitOneInFlight } from './tally-grpc-introspect-opaque-cache-hit.js';
import { tallyGrpcIntrospectOpaqueCacheHitTraced } from './tally-grpc-introspect-opaque-cache-hit-traced.js';
import { tallyGrpcIntrospectOpaque } from './tally-grpc-introspect-opaque.js';
import { tallyOauth2Introspect } from './tally-oauth2-introspect.js';
import { tallyRevokeLeasedReplicas } from './tally-revoke-leased-replicas.js';
import { tallyRevokeViewClients } from './tally-revoke-view-clients.js';
import { tallyClientViewHit } from './tally-client-view-hit.js';

export const rows: readonly [Row, ...Row[]] = [
  bareGrpcIntrospect,
  openLoopSelfCheck,
  openLoopH2loadCheck,
  openLoopBareHalf,
  tallyGrpcIntrospectOpaque,
  tallyGrpcIntrospectOpaqueCacheHit,
  tallyGrpcIntrospectOpaqueCacheHitTraced,
  bareGrpcIntrospectOneInFlight,
  tallyGrpcIntrospectOpaqueCacheHitOneInFlight,
  openLoopCacheHitQuarter,
  openLoopCacheHitHalf,
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
  tallyClientViewHit,
  tallyRevokeLeasedReplicas,
  tallyRevokeViewClients,
  openLoopCacheOffQuarter,
  openLoopCacheOffHalf,
  bareGrpcIntrospectAgain,
];
