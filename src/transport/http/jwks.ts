// GET /.well-known/jwks.json: the public keys of the ring (active and
// retiring), for anyone verifying Tally's JWTs, internal JWTs and signed
// introspection answers. No credential: the keys are public.
//
// Caching: a retiring key stays in the ring for the longest token lifetime
// plus the clock skew, so a stale copy never lacks a key that old tokens
// need; what it can lack is a key made by a rotation since it was fetched.
// A short max-age (TALLY_JWKS_MAX_AGE, default 60s) bounds how long a
// verifier that does not refetch on an unknown "kid" refuses fresh tokens;
// stale-if-error lets verifiers ride out a Tally outage on the keys they have.

import type { TokenService } from '../../core/token-service.js';
import type { CallLogger } from '../call-log.js';
import { loggedRoute, writeFailure } from './oauth-endpoint.js';
import type { Route } from './router.js';

export const JWKS_PATH = '/.well-known/jwks.json';

export interface JwksRouteOptions {
  tokens: TokenService;
  logCall: CallLogger;
  maxAgeMs: number;
}

/** How long a verifier may keep using its copy while Tally cannot answer. */
const STALE_IF_ERROR_SECONDS = 86_400;

export function createJwksRoute(options: JwksRouteOptions): Route {
  const maxAge = Math.floor(options.maxAgeMs / 1000);
  return loggedRoute('GET', JWKS_PATH, options.logCall, async (_request, response, call) => {
    try {
      const keys = await options.tokens.listKeys();
      response.writeHead(200, {
        'content-type': 'application/jwk-set+json',
        'cache-control': `public, max-age=${maxAge}, stale-if-error=${STALE_IF_ERROR_SECONDS}`,
      });
      response.end(JSON.stringify({ keys: keys.map((key) => key.publicJwk) }));
    } catch (error) {
      writeFailure(response, call, error);
    }
  });
}
