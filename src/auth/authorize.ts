// What each caller may do. One table maps every RPC and endpoint to the
// permission it needs; transports look calls up here and nowhere else.
import { PermissionDeniedError } from '../core/errors.js';
import type { Caller, Permission } from './callers.js';

/** Every call that needs a credential, by the name transports give it. */
export const REQUIRED_PERMISSION: Readonly<Record<string, Permission>> = {
  'tally.v1.TokenService/Issue': 'issue',
  'tally.v1.TokenService/Introspect': 'introspect',
  'tally.v1.TokenService/Revoke': 'revoke',
  'tally.v1.TokenService/RotateKeys': 'keys',
  'tally.v1.TokenService/SetDefaultAlgorithm': 'keys',
  'tally.v1.TokenService/RetireAlgorithm': 'keys',
  'tally.v1.TokenService/ListKeys': 'keys',
  'tally.v1.TokenService/RevokeKey': 'keys',
  // Holders of a local view of Introspect answers (tally/client): what introspect may see, kept current.
  'tally.v1.TokenService/WatchRevocations': 'introspect',
  'tally.v1.TokenService/AcknowledgeRevocations': 'introspect',
  'tally.v1.TokenService/FollowRevocations': 'introspect',
  'envoy.service.auth.v3.Authorization/Check': 'ext_authz',
  'POST /oauth2/introspect': 'introspect',
  'POST /oauth2/revoke': 'revoke',
  // /metrics itself needs no credential; this permission adds why introspections were inactive.
  'GET /metrics': 'metrics',
};

/** Whether a call needs a caller at all (health, reflection and the JWKS do not). */
export function isGuardedCall(call: string): boolean {
  return Object.hasOwn(REQUIRED_PERMISSION, call);
}

export function authorize(caller: Caller, call: string): void {
  const permission = REQUIRED_PERMISSION[call];
  if (permission === undefined) throw new PermissionDeniedError(`${call} is not a call Tally knows`);
  if (!caller.permissions.has(permission)) {
    throw new PermissionDeniedError(`caller "${caller.name}" lacks the "${permission}" permission`);
  }
}

/** Audiences a limited caller may put in a token it issues: all of them must be its own. */
export function authorizeAudiences(caller: Caller, audiences: readonly string[]): void {
  if (caller.audiences === undefined) return;
  const foreign = audiences.filter((audience) => !caller.audiences!.includes(audience));
  if (foreign.length > 0) throw new PermissionDeniedError(`caller "${caller.name}" may not issue tokens for audience "${foreign[0]}"`);
}

/** Revoking a whole subject, client or session reaches across audiences: only unlimited callers may. */
export function authorizeBroadRevoke(caller: Caller): void {
  if (caller.audiences !== undefined) {
    throw new PermissionDeniedError(`caller "${caller.name}" is limited to its audiences and may only revoke single tokens`);
  }
}
