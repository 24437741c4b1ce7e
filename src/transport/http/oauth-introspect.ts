// POST /oauth2/introspect: RFC 7662 token introspection, and the RFC 9701
// signed answer (a JWT the resource server can keep as evidence) when the
// caller sends Accept: application/token-introspection+jwt.
//
// Steps: authenticate the caller → read the form → introspect with the
// caller's audiences → answer JSON or JWT. Anything inactive answers exactly
// {"active":false}; why goes to the log line only.

import type { ScanLimiter } from '../../auth/scan-limiter.js';
import { tokenClaims } from '../../core/claims.js';
import type { TokenService } from '../../core/token-service.js';
import { createCallerIntrospection } from '../caller-introspection.js';
import type { ActiveToken, Introspection, JsonObject } from '../../core/types.js';
import { recordIntrospection } from '../call/call-details.js';
import type { CallPipeline } from '../call/pipeline.js';
import { pipelineRoute, readTokenRequest, writeFailure, writeJsonText } from './oauth-endpoint.js';
import type { Route } from './router.js';

export const INTROSPECTION_PATH = '/oauth2/introspect';
const INTROSPECTION_JWT_MEDIA_TYPE = 'application/token-introspection+jwt';
const INTROSPECTION_JWT_TYPE = 'token-introspection+jwt';

/**
 * How long a signed answer stays valid. RFC 9701 §5 advises against "exp";
 * a short one is kept because every statement Tally signs carries one, and a
 * minute bounds how long a copied answer can be replayed as fresh.
 */
const SIGNED_ANSWER_TTL_MS = 60_000;

export interface IntrospectionRouteOptions {
  tokens: TokenService;
  /** Charges the caller for unknown tokens, as the Introspect RPC does. */
  scanLimiter?: ScanLimiter;
  pipeline: CallPipeline;
  maxBodyBytes: number;
}

export function createIntrospectionRoute(options: IntrospectionRouteOptions): Route {
  const { tokens } = options;
  const introspectAs = createCallerIntrospection(tokens, options.scanLimiter);
  return pipelineRoute('POST', INTROSPECTION_PATH, options.pipeline, async (request, response, call) => {
    const tokenRequest = await readTokenRequest(request, response, call, options.maxBodyBytes);
    if (tokenRequest === undefined) return;
    const { caller, token } = tokenRequest;
    // token_type_hint is optional and only a hint (RFC 7662 §2.1); Tally tells its formats apart by itself.
    let result: Introspection;
    try {
      result = await introspectAs(caller, { token });
    } catch (error) {
      writeFailure(response, call, error);
      return;
    }
    recordIntrospection(call.details, result);
    if (wantsSignedAnswer(request.headers.accept)) {
      const answer = result.active ? introspectionClaims(result) : { active: false };
      try {
        const jwt = await tokens.signStatement({ aud: caller.name, token_introspection: answer }, { type: INTROSPECTION_JWT_TYPE, ttlMs: SIGNED_ANSWER_TTL_MS });
        response.writeHead(200, { 'content-type': INTROSPECTION_JWT_MEDIA_TYPE, 'cache-control': 'no-store' });
        response.end(jwt);
      } catch (error) {
        writeFailure(response, call, error);
      }
      return;
    }
    writeJsonText(response, 200, result.active ? answerText(result) : INACTIVE_TEXT);
  });
}

const INACTIVE_TEXT = JSON.stringify({ active: false });

// A shared active answer (core: one per token record, frozen) is written as
// JSON once, as the gRPC port encodes its message once.
const answerTexts = new WeakMap<ActiveToken, string>();

function answerText(token: ActiveToken): string {
  let text = answerTexts.get(token);
  if (text === undefined) {
    text = JSON.stringify(introspectionClaims(token));
    if (Object.isFrozen(token)) answerTexts.set(token, text);
  }
  return text;
}

/** RFC 7662 §2.2: the token's claims as every path writes them (core/claims.ts), with "active" and "token_type". */
function introspectionClaims(token: ActiveToken): JsonObject {
  return { ...tokenClaims(token, token.claims), active: true, token_type: 'Bearer' };
}

function wantsSignedAnswer(accept: string | undefined): boolean {
  return (accept ?? '')
    .split(',')
    .some((range) => range.split(';', 1)[0]!.trim().toLowerCase() === INTROSPECTION_JWT_MEDIA_TYPE);
}
