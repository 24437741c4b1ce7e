// Envoy's external authorization service (envoy.service.auth.v3.Authorization)
// in front of the token service: Envoy sends the downstream request's headers,
// Tally introspects the bearer token in them and answers allow (with headers
// for the upstream) or deny (with the HTTP answer Envoy sends back).
//
// The gRPC call itself succeeds either way: the verdict travels in
// CheckResponse.status, as Envoy expects. A failing call (store down, Envoy's
// own credential refused) is an error Envoy handles by its failure_mode_allow
// and status_on_error settings, so Tally fails closed unless told otherwise.

import type { ServiceImpl } from '@connectrpc/connect';
import { Code } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { bearerCredential } from '../../auth/authenticate.js';
import type { ScanLimiter } from '../../auth/scan-limiter.js';
import type { TokenService } from '../../core/token-service.js';
import { tokenClaims } from '../../core/claims.js';
import type { ActiveToken } from '../../core/types.js';
import { HeaderValueOption_HeaderAppendAction } from '../../gen/envoy/config/core/v3/base_pb.js';
import type { AttributeContext } from '../../gen/envoy/service/auth/v3/attribute_context_pb.js';
import { Authorization, type CheckRequest, type CheckResponseSchema } from '../../gen/envoy/service/auth/v3/external_auth_pb.js';
import { StatusCode } from '../../gen/envoy/type/v3/http_status_pb.js';
import { stopWaitingWhenCancelled } from '../call/abort.js';
import { createCallerIntrospection } from '../caller-introspection.js';
import { recordIntrospection } from '../call/call-details.js';
import { callOf } from '../call/pipeline.js';
import type { HeaderReader } from '../telemetry/tracing.js';

/** Headers Tally sets (or removes, when empty) on the request it lets through. */
export const UPSTREAM_HEADERS = {
  subject: 'x-tally-subject',
  clientId: 'x-tally-client-id',
  scopes: 'x-tally-scopes',
  tokenId: 'x-tally-token-id',
} as const;

/**
 * Keys of the per-route `context_extensions` Tally reads: the audience the
 * token must name, and the scopes (space-separated) it must all carry.
 */
export const CONTEXT_EXTENSIONS = {
  audience: 'tally_audience',
  scopes: 'tally_scopes',
} as const;

/**
 * The header type of the internal JWT. Not "at+jwt", so Tally itself never
 * takes the internal JWT for an access token if it leaks back to the edge.
 */
export const INTERNAL_JWT_TYPE = 'tally-internal+jwt';

export interface ExtAuthzOptions {
  tokens: TokenService;
  /**
   * Lifetime of the internal JWT that replaces the caller's token on its way
   * upstream (the phantom-token pattern); 0 forwards the token as it came.
   */
  internalJwtTtlMs: number;
  /** Charges callers that hold `introspect` for unknown tokens, as every introspection path does. */
  scanLimiter?: ScanLimiter;
}

type CheckResponseInit = MessageInitShape<typeof CheckResponseSchema>;

const GRPC_OK = 0;

export function createExtAuthzHandlers(options: ExtAuthzOptions): ServiceImpl<typeof Authorization> {
  const { tokens } = options;
  const introspectAs = createCallerIntrospection(tokens, options.scanLimiter);
  return {
    async check(request, context) {
      const call = callOf(context.values);
      const details = call?.details;
      const refuse = (reason: DenyReason, requiredScopes?: readonly string[]) => {
        if (details !== undefined) details.denied = reason;
        return deny(reason, requiredScopes);
      };
      const token = bearerTokenOf(request.attributes);
      if (token === undefined) return refuse('missing_token');
      // Audience and scopes are checked here rather than by introspect, so that a
      // revoked or expired token is always 401, and only a good one lacking rights is 403.
      const result = await stopWaitingWhenCancelled(context, () => introspectAs(call?.caller, { token }));
      recordIntrospection(details, result);
      if (!result.active) return refuse('invalid_token');
      const extensions = request.attributes?.contextExtensions ?? {};
      const audience = extensions[CONTEXT_EXTENSIONS.audience]?.trim() ?? '';
      const scopes = (extensions[CONTEXT_EXTENSIONS.scopes] ?? '').split(' ').filter((scope) => scope !== '');
      if (audience !== '' && !result.audience.includes(audience)) return refuse('insufficient_scope', scopes);
      if (scopes.some((scope) => !result.scopes.includes(scope))) return refuse('insufficient_scope', scopes);
      return allow(result, options.internalJwtTtlMs > 0 ? await internalJwt(tokens, result, options.internalJwtTtlMs) : undefined);
    },
  };
}

/** The bearer token of the downstream request. */
export function bearerTokenOf(attributes: AttributeContext | undefined): string | undefined {
  const authorization = checkedRequestHeader(attributes, 'authorization');
  return authorization === undefined ? undefined : bearerCredential(authorization);
}

/** The checked request's headers, where its client's trace context may be (see app.ts). */
export function checkedRequestCarrier(request: CheckRequest): HeaderReader {
  return (name) => checkedRequestHeader(request.attributes, name);
}

/**
 * One header of the downstream request (name in lower case), from the header
 * map Envoy sends in either of its two shapes. A header sent twice names no
 * one value: undefined rather than a guess (two authorization headers, two
 * tokens).
 */
function checkedRequestHeader(attributes: AttributeContext | undefined, name: string): string | undefined {
  const http = attributes?.request?.http;
  if (http === undefined) return undefined;
  const fromMap = http.headers[name];
  if (fromMap !== undefined) return fromMap;
  // With encode_raw_headers Envoy sends every value apart, as text or as bytes.
  const values = (http.headerMap?.headers ?? [])
    .filter((header) => header.key.toLowerCase() === name)
    .map((header) => (header.value !== '' ? header.value : Buffer.from(header.rawValue).toString('latin1')));
  return values.length === 1 ? values[0] : undefined;
}

/**
 * The phantom token: the token's claims as every path writes them
 * (core/claims.ts), signed by the internal key; signStatement sets its own
 * iss (the same issuer), iat and exp, so its time window is its own.
 */
function internalJwt(tokens: TokenService, token: ActiveToken, ttlMs: number): Promise<string> {
  return tokens.signStatement(tokenClaims(token, token.claims), { type: INTERNAL_JWT_TYPE, ttlMs });
}

function header(key: string, value: string) {
  // Overwrite, never append: a client must not smuggle in its own x-tally-subject.
  return { header: { key, value }, appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD };
}

function allow(token: ActiveToken, jwt: string | undefined): CheckResponseInit {
  const values: Array<[string, string]> = [
    [UPSTREAM_HEADERS.subject, token.subject],
    [UPSTREAM_HEADERS.clientId, token.clientId],
    [UPSTREAM_HEADERS.scopes, token.scopes.join(' ')],
    [UPSTREAM_HEADERS.tokenId, token.tokenId],
  ];
  const headers = values.filter(([, value]) => value !== '').map(([key, value]) => header(key, value));
  // An empty value is sent as a removal, so a header the client set itself cannot survive.
  const headersToRemove = values.filter(([, value]) => value === '').map(([key]) => key);
  // Overwriting authorization is what removes the original token: the upstream never sees it.
  if (jwt !== undefined) headers.push(header('authorization', `Bearer ${jwt}`));
  return {
    status: { code: GRPC_OK },
    httpResponse: { case: 'okResponse', value: { headers, headersToRemove } },
  };
}

type DenyReason = 'missing_token' | 'invalid_token' | 'insufficient_scope';

function deny(reason: DenyReason, requiredScopes: readonly string[] = []): CheckResponseInit {
  const forbidden = reason === 'insufficient_scope';
  // RFC 6750 §3: no error code when no credential came at all; the scopes needed when they fell short.
  let challenge = 'Bearer';
  if (reason !== 'missing_token') challenge += ` error="${reason}"`;
  if (forbidden && requiredScopes.length > 0) challenge += `, scope="${requiredScopes.join(' ')}"`;
  const headers = [header('www-authenticate', challenge)];
  if (reason !== 'missing_token') headers.push(header('content-type', 'application/json'));
  return {
    status: forbidden
      ? { code: Code.PermissionDenied, message: 'the token lacks the audience or scopes this route requires' }
      : { code: Code.Unauthenticated, message: 'a valid bearer token is required' },
    httpResponse: {
      case: 'deniedResponse',
      value: {
        status: { code: forbidden ? StatusCode.Forbidden : StatusCode.Unauthorized },
        headers,
        body: reason === 'missing_token' ? '' : JSON.stringify({ error: reason }),
      },
    },
  };
}
