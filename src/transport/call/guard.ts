// The one place every call is authenticated and authorized, on both ports:
// credentials from the transport (peer.ts) → caller (auth/authenticate.ts)
// → permission for the call (auth/authorize.ts). The call pipeline
// (pipeline.ts) asks it at step 3; handlers find the caller on their call.
import { authenticate, bearerCredential, type AuthenticationPolicy } from '../../auth/authenticate.js';
import { authorize } from '../../auth/authorize.js';
import { basicCredential } from '../../auth/basic-credential.js';
import type { Caller, CallerDirectory } from '../../auth/callers.js';
import { UnauthenticatedError } from '../../core/errors.js';
import type { PeerInfo } from './peer.js';

export interface Guard {
  /**
   * The caller making `call` (a key of auth/authorize.ts's table), or a
   * TallyError: UNAUTHENTICATED without a good credential, PERMISSION_DENIED
   * without the permission.
   */
  check(call: string, authorization: string | null | undefined, peer: PeerInfo | undefined, onIdentified?: (caller: Caller) => void): Caller;
}

export interface GuardOptions {
  /** The current callers (the file is re-read when it changes). */
  callers: () => CallerDirectory;
  /** With no callers configured, serve loopback peers only. */
  protectedMode: boolean;
}

export function createGuard(options: GuardOptions): Guard {
  return {
    check(call, authorization, peer, onIdentified) {
      const bearer = bearerCredential(authorization ?? undefined);
      // OAuth clients of the RFC 7662/7009 endpoints send their name and key as Basic.
      const basic = bearer === undefined ? basicCredential(authorization ?? undefined) : undefined;
      // A malformed authorization header is refused, not ignored: ignoring it
      // would fall back to the certificate or protected mode behind the caller's back.
      if (authorization && bearer === undefined && basic === undefined) {
        throw new UnauthenticatedError('the authorization header must be "Bearer <API key>" or "Basic <base64 of name:API key>"');
      }
      const policy: AuthenticationPolicy = { directory: options.callers(), protectedMode: options.protectedMode };
      const caller = authenticate(
        { bearer: bearer ?? basic?.secret, tlsIdentities: peer?.tlsIdentities ?? [], loopback: peer?.loopback ?? false, host: peer?.host },
        policy,
      );
      // The same message as an unknown key: which half was wrong is no one's business.
      if (basic !== undefined && policy.directory.callers.length > 0 && caller.name !== basic.name) {
        throw new UnauthenticatedError('the API key is not known');
      }
      // Known before the permission is checked, so a refusal is logged with the caller's name.
      onIdentified?.(caller);
      authorize(caller, call);
      return caller;
    },
  };
}
