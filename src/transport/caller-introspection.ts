// Introspection on behalf of a caller, the same on every path (the
// Introspect RPC, POST /oauth2/introspect, Envoy's ext_authz Check): the
// caller's audiences limit what it may see, and a caller holding the
// `introspect` permission has a scan budget, checked before any work and
// charged for every miss (auth/scan-limiter.ts), whichever path it takes.
//
// A sidecar holding only `ext_authz` has none: its traffic comes from end
// users, so a per-caller budget would let anyone sending junk bearer tokens
// deny service to everyone behind that sidecar. Guessing a 256-bit token
// through the edge is hopeless anyway, and rate limits at the edge are
// Envoy's job. Giving `ext_authz` alone cannot open a scanning path either:
// Check answers allow or deny, never claims.
import type { Caller } from '../auth/callers.js';
import { whenReady, type Awaitable } from '../core/awaitable.js';
import { isMiss, type ScanLimiter } from '../auth/scan-limiter.js';
import { ResourceExhaustedError } from '../core/errors.js';
import type { TokenService } from '../core/token-service.js';
import type { IntrospectInput, Introspection } from '../core/types.js';

export type CallerIntrospection = (caller: Caller | undefined, input: Omit<IntrospectInput, 'callerAudiences'>) => Awaitable<Introspection>;

export function createCallerIntrospection(tokens: Pick<TokenService, 'introspect'>, scanLimiter: ScanLimiter | undefined): CallerIntrospection {
  return (caller, input) => {
    const limited = scanLimiter !== undefined && caller !== undefined && caller.permissions.has('introspect');
    // Refused before any work, so a scanner's calls cost no store round trip.
    if (limited && !scanLimiter.allows(caller.name)) {
      throw new ResourceExhaustedError(`caller "${caller.name}" introspected too many unknown tokens; slow down and retry later`);
    }
    const result = tokens.introspect({ ...input, callerAudiences: caller?.audiences });
    if (!limited) return result;
    return whenReady(result, (settled) => {
      if (!settled.active && isMiss(settled.reason)) scanLimiter.recordMiss(caller.name);
      return settled;
    });
  };
}
