// The plain HTTP routes that speak standards rather than Tally's own API:
// RFC 7662 introspection, RFC 7009 revocation, the JWKS and the metrics.

import type { ScanLimiter } from '../../auth/scan-limiter.js';
import type { TokenService } from '../../core/token-service.js';
import type { Guard } from '../call/guard.js';
import type { CallPipeline } from '../call/pipeline.js';
import type { Metrics } from '../telemetry/metrics.js';
import { createInternalJwksRoute, createJwksRoute } from './jwks.js';
import { createMetricsRoute } from './metrics-route.js';
import { createIntrospectionRoute } from './oauth-introspect.js';
import { createRevocationRoute } from './oauth-revoke.js';
import type { Route } from './router.js';

export interface StandardRoutesOptions {
  tokens: TokenService;
  pipeline: CallPipeline;
  /** For /metrics, which is no call of the pipeline: a credential only adds what it shows. */
  guard: Guard;
  metrics: Metrics;
  maxBodyBytes: number;
  jwksMaxAgeMs: number;
  /** stale-if-error of both key sets (jwks.ts staleIfErrorMs). */
  jwksStaleIfErrorMs: number;
  scanLimiter?: ScanLimiter;
}

export function createStandardRoutes(options: StandardRoutesOptions): Route[] {
  const { tokens, pipeline, maxBodyBytes } = options;
  return [
    createIntrospectionRoute({ tokens, pipeline, maxBodyBytes, scanLimiter: options.scanLimiter }),
    createRevocationRoute({ tokens, pipeline, maxBodyBytes }),
    createJwksRoute({ tokens, pipeline, maxAgeMs: options.jwksMaxAgeMs, staleIfErrorMs: options.jwksStaleIfErrorMs }),
    createInternalJwksRoute({ tokens, pipeline, maxAgeMs: options.jwksMaxAgeMs, staleIfErrorMs: options.jwksStaleIfErrorMs }),
    createMetricsRoute(options.metrics, options.guard),
  ];
}
