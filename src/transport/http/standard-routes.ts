// The plain HTTP routes that speak standards rather than Tally's own API:
// RFC 7662 introspection, RFC 7009 revocation, the JWKS and the metrics.

import type { ScanLimiter } from '../../auth/scan-limiter.js';
import type { TokenService } from '../../core/token-service.js';
import type { CallLogger } from '../call-log.js';
import type { Tracing } from '../tracing.js';
import type { Guard } from '../guard.js';
import type { Metrics } from '../metrics.js';
import { createInternalJwksRoute, createJwksRoute } from './jwks.js';
import { createMetricsRoute } from './metrics-route.js';
import { createIntrospectionRoute } from './oauth-introspect.js';
import { createRevocationRoute } from './oauth-revoke.js';
import type { Route } from './router.js';

export interface StandardRoutesOptions {
  tokens: TokenService;
  guard: Guard;
  logCall: CallLogger;
  metrics: Metrics;
  maxBodyBytes: number;
  jwksMaxAgeMs: number;
  /** stale-if-error of both key sets (jwks.ts staleIfErrorMs). */
  jwksStaleIfErrorMs: number;
  scanLimiter?: ScanLimiter;
  /** Set when tracing is on: each call gets a span. */
  tracing?: Tracing;
}

export function createStandardRoutes(options: StandardRoutesOptions): Route[] {
  const { tokens, guard, logCall, maxBodyBytes, tracing } = options;
  return [
    createIntrospectionRoute({ tokens, guard, logCall, tracing, maxBodyBytes, scanLimiter: options.scanLimiter }),
    createRevocationRoute({ tokens, guard, logCall, tracing, maxBodyBytes }),
    createJwksRoute({ tokens, logCall, tracing, maxAgeMs: options.jwksMaxAgeMs, staleIfErrorMs: options.jwksStaleIfErrorMs }),
    createInternalJwksRoute({ tokens, logCall, tracing, maxAgeMs: options.jwksMaxAgeMs, staleIfErrorMs: options.jwksStaleIfErrorMs }),
    createMetricsRoute(options.metrics, guard),
  ];
}
