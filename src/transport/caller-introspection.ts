// Introspection on behalf of a caller, the same on every path that answers
// a resource server (the Introspect RPC, POST /oauth2/introspect): the
// caller's audiences limit what it may see, and its scan budget is checked
// before any work and charged for every miss (auth/scan-limiter.ts).
//
// Envoy's ext_authz does not go through here: its caller is a sidecar whose
// traffic comes from end users, so a per-caller budget there would let anyone
// sending junk bearer tokens deny service to everyone behind that sidecar.
// Guessing a 256-bit token through the edge is hopeless anyway, and rate
// limits at the edge are Envoy's job.
import type { Caller } from '../auth/callers.js';
import { isMiss, type ScanLimiter } from '../auth/scan-limiter.js';
import { ResourceExhaustedError } from '../core/errors.js';
import type { TokenService } from '../core/token-service.js';
import type { IntrospectInput, Introspection } from '../core/types.js';

export type CallerIntrospection = (caller: Caller | undefined, input: Omit<IntrospectInput, 'callerAudiences'>) => Promise<Introspection>;

export function createCallerIntrospection(tokens: Pick<TokenService, 'introspect'>, scanLimiter: ScanLimiter | undefined): CallerIntrospection {
  return async (caller, input) => {
    // Refused before any work, so a scanner's calls cost no store round trip.
    if (scanLimiter !== undefined && caller !== undefined && !scanLimiter.allows(caller.name)) {
      throw new ResourceExhaustedError(`caller "${caller.name}" introspected too many unknown tokens; slow down and retry later`);
    }
    const result = await tokens.introspect({ ...input, callerAudiences: caller?.audiences });
    if (!result.active && scanLimiter !== undefined && caller !== undefined && isMiss(result.reason)) scanLimiter.recordMiss(caller.name);
    return result;
  };
}
