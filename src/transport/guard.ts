// The one place every call is authenticated and authorized, on both ports:
// credentials from the transport (peer.ts) → caller (auth/authenticate.ts)
// → permission for the call (auth/authorize.ts). Handlers find the caller
// in their context and use its audiences.
import { createContextKey, type ContextValues, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type { DescService } from '@bufbuild/protobuf';
import { authenticate, bearerCredential, type AuthenticationPolicy } from '../auth/authenticate.js';
import { authorize } from '../auth/authorize.js';
import { basicCredential } from '../auth/basic-credential.js';
import type { Caller, CallerDirectory } from '../auth/callers.js';
import { UnauthenticatedError } from '../core/errors.js';
import { callDetailsOf } from './call-details.js';
import { peerOf, type PeerInfo } from './peer.js';

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

export const callerKey = createContextKey<Caller | undefined>(undefined, { description: 'tally caller' });

export function callerOf(values: ContextValues): Caller | undefined {
  return values.get(callerKey);
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

/**
 * The handlers of a service, each checked by the guard before it runs. The
 * caller is recorded for the call's log line and left in the context.
 */
export function guardService<Service extends DescService>(service: Service, handlers: ServiceImpl<Service>, guard: Guard): ServiceImpl<Service> {
  const guarded: Record<string, unknown> = {};
  for (const method of service.methods) {
    const handler = (handlers as Record<string, (request: unknown, context: HandlerContext) => unknown>)[method.localName]!;
    const call = `${service.typeName}/${method.name}`;
    guarded[method.localName] = (request: unknown, context: HandlerContext) => {
      // Already checked for this very call by the gRPC port's interceptor, before its message was read.
      if (callerOf(context.values) !== undefined) return handler(request, context);
      const details = callDetailsOf(context.values);
      const peer = peerOf(context.values);
      // The gRPC adapter reads the credential from metadata, sparing a Headers object per call.
      const authorization = peer?.authorization !== undefined ? peer.authorization : context.requestHeader.get('authorization');
      const caller = guard.check(call, authorization, peer, (identified) => {
        if (details !== undefined) details.caller = identified.name;
      });
      context.values.set(callerKey, caller);
      return handler(request, context);
    };
  }
  return guarded as ServiceImpl<Service>;
}
