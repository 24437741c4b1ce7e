// GET /.well-known/jwks.json: the public keys of the ring (active and
// retiring), for anyone verifying Tally's access-token JWTs. No credential:
// the keys are public.
//
// GET /.well-known/internal-jwks.json: the public key of Tally's internal
// JWTs (ext_authz phantom tokens, RFC 9701 signed introspection answers),
// published apart so that no verifier of access tokens can accept one
// (core/keys/internal-key.ts). It changes only with the master secret.
//
// Caching: a retiring key stays in the ring for the longest token lifetime
// plus the clock skew, so a stale copy never lacks a key that old tokens
// need; what it can lack is a key made by a rotation since it was fetched.
// A short max-age (TALLY_JWKS_MAX_AGE, default 60s) bounds how long a
// verifier that does not refetch on an unknown "kid" refuses fresh tokens.
// stale-if-error lets verifiers ride out a Tally outage on the keys they
// have, but a copy kept longer also keeps a key revoked since (RevokeKey), so
// it is bounded by the rotation settings: no longer than a rotation interval
// (a copy older than that lacks the signing key anyway) nor than the longest
// token lifetime (staleIfErrorSeconds).

import type { TokenService } from '../../core/token-service.js';
import type { PublicJwk } from '../../core/types.js';
import type { CallPipeline } from '../call/pipeline.js';
import { pipelineRoute, writeFailure } from './oauth-endpoint.js';
import type { Route } from './router.js';

export const JWKS_PATH = '/.well-known/jwks.json';
export const INTERNAL_JWKS_PATH = '/.well-known/internal-jwks.json';

export interface JwksRouteOptions {
  tokens: TokenService;
  pipeline: CallPipeline;
  maxAgeMs: number;
  /** How long a verifier may keep using its copy while Tally cannot answer (see staleIfErrorSeconds). */
  staleIfErrorMs: number;
}

/** The longest stale-if-error whatever the settings: a day. */
const MAX_STALE_IF_ERROR_MS = 86_400_000;

/**
 * How long a verifier may use a stale JWKS copy while Tally cannot answer: at
 * most the rotation interval (when keys rotate on a schedule), the longest
 * token lifetime, and a day.
 */
export function staleIfErrorMs(settings: { maxTokenTtlMs: number; keyRotationIntervalMs?: number }): number {
  return Math.min(MAX_STALE_IF_ERROR_MS, settings.maxTokenTtlMs, settings.keyRotationIntervalMs ?? Infinity);
}

function keySetRoute(path: string, options: JwksRouteOptions, keys: () => Promise<PublicJwk[]>): Route {
  const cacheControl = `public, max-age=${Math.floor(options.maxAgeMs / 1000)}, stale-if-error=${Math.floor(options.staleIfErrorMs / 1000)}`;
  return pipelineRoute('GET', path, options.pipeline, async (_request, response, call) => {
    try {
      const body = JSON.stringify({ keys: await keys() });
      response.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': cacheControl });
      response.end(body);
    } catch (error) {
      writeFailure(response, call, error);
    }
  });
}

export function createJwksRoute(options: JwksRouteOptions): Route {
  return keySetRoute(JWKS_PATH, options, async () => (await options.tokens.listKeys()).map((key) => key.publicJwk));
}

export function createInternalJwksRoute(options: JwksRouteOptions): Route {
  return keySetRoute(INTERNAL_JWKS_PATH, options, async () => options.tokens.internalKeys());
}
