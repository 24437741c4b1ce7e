// POST /oauth2/revoke: RFC 7009 token revocation. Revoking a token that is
// unknown, expired, malformed or not the caller's to see answers 200 like a
// real revocation (RFC 7009 §2.2), so the endpoint is no oracle.

import type { TokenService } from '../../core/token-service.js';
import type { CallPipeline } from '../call/pipeline.js';
import { pipelineRoute, readTokenRequest, writeFailure } from './oauth-endpoint.js';
import type { Route } from './router.js';

const REVOCATION_PATH = '/oauth2/revoke';

export interface RevocationRouteOptions {
  tokens: TokenService;
  pipeline: CallPipeline;
  maxBodyBytes: number;
}

export function createRevocationRoute(options: RevocationRouteOptions): Route {
  const { tokens } = options;
  return pipelineRoute('POST', REVOCATION_PATH, options.pipeline, async (request, response, call) => {
    const tokenRequest = await readTokenRequest(request, response, call, options.maxBodyBytes);
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
  });
}
