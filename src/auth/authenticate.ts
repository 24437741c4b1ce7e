// Turns what a call presents into a Caller, the same way for every RPC and
// endpoint on both ports. Transports only gather the credentials.
import { createHash } from 'node:crypto';
import { UnauthenticatedError } from '../core/errors.js';
import { PERMISSIONS, type Caller, type CallerDirectory } from './callers.js';

export interface PresentedCredentials {
  /** The value after "Bearer " in the authorization header or metadata, if any. */
  bearer?: string;
  /** SPIFFE IDs and subject of a verified client certificate, most specific first. */
  tlsIdentities?: readonly string[];
  /** The peer's address is a loopback address. */
  loopback: boolean;
}

export interface AuthenticationPolicy {
  directory: CallerDirectory;
  /**
   * With no callers configured, serve loopback peers only (as Redis's
   * protected mode does). Turning it off serves every peer, unauthenticated.
   */
  protectedMode: boolean;
}

const ALL_PERMISSIONS = new Set(PERMISSIONS);
/** The caller a loopback peer is served as when no callers are configured. */
export const LOCAL_CALLER: Caller = { name: 'local', permissions: ALL_PERMISSIONS };
/** The caller anyone is served as when no callers are configured and protected mode is off. */
export const ANONYMOUS_CALLER: Caller = { name: 'anonymous', permissions: ALL_PERMISSIONS };

export function apiKeyHash(apiKey: string): string {
  return createHash('sha256').update(apiKey, 'utf8').digest('hex');
}

/** Reads "Bearer <credential>" (scheme case-insensitive, RFC 6750); undefined for any other shape. */
export function bearerCredential(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer +([\x21-\x7E]+) *$/i.exec(authorization);
  return match?.[1];
}

export function authenticate(credentials: PresentedCredentials, policy: AuthenticationPolicy): Caller {
  const { directory } = policy;
  if (directory.callers.length === 0) {
    if (!policy.protectedMode) return ANONYMOUS_CALLER;
    if (credentials.loopback) return LOCAL_CALLER;
    throw new UnauthenticatedError('no callers are configured, so only loopback clients are served (protected mode)');
  }
  // A presented key must be good: a wrong one is refused even if the certificate would pass.
  if (credentials.bearer !== undefined) {
    const caller = directory.byApiKeyHash.get(apiKeyHash(credentials.bearer));
    if (caller === undefined) throw new UnauthenticatedError('the API key is not known');
    return caller;
  }
  for (const identity of credentials.tlsIdentities ?? []) {
    const caller = directory.byTlsIdentity.get(identity);
    if (caller !== undefined) return caller;
  }
  throw new UnauthenticatedError(
    credentials.tlsIdentities?.length ? 'the client certificate names no known caller' : 'a caller credential is required (API key or client certificate)',
  );
}
