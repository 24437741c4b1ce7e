// Turns what a call presents into a Caller, the same way for every RPC and
// endpoint on both ports. Transports only gather the credentials.
import { hash } from 'node:crypto';
import { UnauthenticatedError } from '../core/errors.js';
import { PERMISSIONS, type Caller, type CallerDirectory } from './callers.js';

export interface PresentedCredentials {
  /** The value after "Bearer " in the authorization header or metadata, if any. */
  bearer?: string;
  /** SPIFFE IDs and subject of a verified client certificate, most specific first. */
  tlsIdentities?: readonly string[];
  /** The peer's address is a loopback address. */
  loopback: boolean;
  /** The Host header or :authority the client named, if any (protected mode checks it against DNS rebinding). */
  host?: string;
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
const ANONYMOUS_CALLER: Caller = { name: 'anonymous', permissions: ALL_PERMISSIONS };

export function apiKeyHash(apiKey: string): string {
  // One-shot: a hash object per call was a few microseconds of every authenticated call.
  return hash('sha256', apiKey, 'hex');
}

/** Reads "Bearer <credential>" (scheme case-insensitive, RFC 6750); undefined for any other shape. */
export function bearerCredential(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer +([\x21-\x7E]+) *$/i.exec(authorization);
  return match?.[1];
}

/**
 * Whether a Host header or :authority names this machine: localhost (and
 * *.localhost, RFC 6761), 127.0.0.0/8 or [::1], with or without a port. A
 * browser tricked by DNS rebinding still sends the attacker's name, so a
 * loopback peer naming any other host is not served in protected mode.
 */
function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.trim().toLowerCase();
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(name);
  if (bracketed !== null) return bracketed[1] === '::1';
  const hostname = name.replace(/:\d{1,5}$/, '');
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return /^[a-z0-9.-]+$/.test(hostname);
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

export function authenticate(credentials: PresentedCredentials, policy: AuthenticationPolicy): Caller {
  const { directory } = policy;
  if (directory.callers.length === 0) {
    // With no callers no key is good: a presented one is refused, never ignored.
    if (credentials.bearer !== undefined) throw new UnauthenticatedError('the API key is not known (no callers are configured)');
    if (!policy.protectedMode) return ANONYMOUS_CALLER;
    if (credentials.loopback && isLoopbackHost(credentials.host)) return LOCAL_CALLER;
    throw new UnauthenticatedError(
      credentials.loopback
        ? 'no callers are configured, so only loopback clients naming a loopback host are served (protected mode)'
        : 'no callers are configured, so only loopback clients are served (protected mode)',
    );
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
