// POST /oauth2/revoke: RFC 7009 token revocation. Revoking a token that is
// unknown, expired, malformed or not the caller's to see answers 200 like a
// real revocation (RFC 7009 §2.2), so the endpoint is no oracle.

import type { TokenService } from '../../core/token-service.js';
import type { CallLogger } from '../call-log.js';
import type { Tracing } from '../tracing.js';
import type { Guard } from '../guard.js';
import { loggedRoute, readTokenRequest, writeFailure } from './oauth-endpoint.js';
import type { Route } from './router.js';

export const REVOCATION_PATH = '/oauth2/revoke';

export interface RevocationRouteOptions {
  tokens: TokenService;
  guard: Guard;
  logCall: CallLogger;
  /** Set when tracing is on: each call gets a span. */
  tracing?: Tracing;
  maxBodyBytes: number;
}

export function createRevocationRoute(options: RevocationRouteOptions): Route {
  const { tokens, guard } = options;
  return loggedRoute('POST', REVOCATION_PATH, options.logCall, async (request, response, call) => {
    const tokenRequest = await readTokenRequest(guard, `POST ${REVOCATION_PATH}`, request, response, call, options.maxBodyBytes);
    if (tokenRequest === undefined) return;
    const { caller, token } = tokenRequest;
    // Every token Tally issues is an access token; a hint of another type is searched all the same (RFC 7009 §2.1).
    try {
      await tokens.revoke({ kind: 'token', token }, { callerAudiences: caller.audiences });
    } catch (error) {
      writeFailure(response, call, error);
      return;
    }
    response.writeHead(200, { 'cache-control': 'no-store', 'content-length': '0' });
    response.end();
  }, options.tracing);
}
