// The proto ⇄ core mapping, written once: both servers (grpc-js on the gRPC
// port, connect-node on the HTTP port) run these handlers. Each one turns a
// request message into a core call and the result into a response message;
// core errors pass through untouched and become statuses in errors.ts.

import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { whenReady } from '../core/awaitable.js';
import type { Duration } from '@bufbuild/protobuf/wkt';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { InvalidArgumentError } from '../core/errors.js';
import { validateRevokeTarget } from '../core/validation.js';
import type { TokenService } from '../core/token-service.js';
import { validateAlgorithm } from '../core/validation.js';
import {
  type ActiveToken,
  type KeyState as CoreKeyState,
  type PublicKeyInfo,
  type RevokeTarget,
  type SigningAlgorithm,
  type TokenFormat as CoreTokenFormat,
} from '../core/types.js';
import {
  IntrospectResponseSchema,
  KeyState,
  TokenFormat,
  TokenService as TokenServiceDescriptor,
  type IntrospectResponse,
  type KeySchema,
  type RevokeRequest,
} from '../gen/tally/v1/token_service_pb.js';
import { authorizeAudiences, authorizeBroadRevoke } from '../auth/authorize.js';
import type { ScanLimiter } from '../auth/scan-limiter.js';
import { createCallerIntrospection } from './caller-introspection.js';
import { recordIntrospection } from './call/call-details.js';
import { callOf } from './call/pipeline.js';
import { stopWaitingWhenCancelled } from './call/abort.js';
import type { RevocationWatch } from '../core/revocation-watch.js';
import { createWatchRevocationsHandlers } from './watch-revocations.js';

export type TokenServiceHandlers = ServiceImpl<typeof TokenServiceDescriptor>;

export interface TokenServiceHandlersOptions {
  /** Refuses introspection to a caller that keeps asking about tokens that do not exist. */
  scanLimiter?: ScanLimiter;
  /** Serves WatchRevocations and AcknowledgeRevocations; without it they answer UNIMPLEMENTED. */
  revocationWatch?: RevocationWatch;
}

export function createTokenServiceHandlers(tokens: TokenService, options: TokenServiceHandlersOptions = {}): TokenServiceHandlers {
  const introspectAs = createCallerIntrospection(tokens, options.scanLimiter);
  return {
    ...createWatchRevocationsHandlers(options.revocationWatch),

    async issue(request, context) {
      const caller = callOf(context.values)?.caller;
      // A caller limited to audiences issues for those only; naming none means all of its own.
      const audience = caller?.audiences !== undefined && request.audience.length === 0 ? [...caller.audiences] : request.audience;
      if (caller !== undefined) authorizeAudiences(caller, audience);
      const issued = await stopWaitingWhenCancelled(context, () =>
        tokens.issue({
          subject: request.subject,
          clientId: nonEmpty(request.clientId),
          audience,
          scopes: request.scopes,
          ttlMs: request.ttl === undefined ? undefined : durationToMs(request.ttl, 'ttl'),
          format: formatFromProto(request.format),
          claims: request.claims,
          sessionId: nonEmpty(request.sessionId),
          algorithm: optionalAlgorithm(request.algorithm),
        }),
      );
      recordTokenId(context, issued.tokenId);
      return {
        token: issued.token,
        tokenId: issued.tokenId,
        format: formatToProto(issued.format),
        issuedAt: timestampFromMs(issued.issuedAt),
        expiresAt: timestampFromMs(issued.expiresAt),
      };
    },

    introspect(request, context) {
      const call = callOf(context.values);
      const result = stopWaitingWhenCancelled(context, () =>
        introspectAs(call?.caller, {
          token: request.token,
          audience: nonEmpty(request.audience),
          requiredScopes: request.requiredScopes.length > 0 ? request.requiredScopes : undefined,
          withRevocationSequence: true,
        }),
      );
      // From memory, the answer goes out without waiting a microtask (core/awaitable.ts).
      return whenReady(result, (settled) => {
        recordIntrospection(call?.details, settled);
        // Nothing but the verdict: the reason is for our log, not for the caller.
        return settled.active ? introspectResponseOf(settled) : INACTIVE;
      });
    },

    async revoke(request, context) {
      const target = revokeTargetFromProto(request.target);
      // Checked before it is logged: a token sent as token_id must not reach the log as an id.
      if (target.kind === 'tokenId') {
        validateRevokeTarget(target);
        recordTokenId(context, target.tokenId);
      }
      const caller = callOf(context.values)?.caller;
      if (caller !== undefined && target.kind !== 'token' && target.kind !== 'tokenId') authorizeBroadRevoke(caller);
      await stopWaitingWhenCancelled(context, () => tokens.revoke(target, { callerAudiences: caller?.audiences }));
      return {};
    },

    async rotateKeys(request, context) {
      const algorithm = optionalAlgorithm(request.algorithm);
      const keys = await stopWaitingWhenCancelled(context, () => tokens.rotateKeys(algorithm));
      return { keys: keys.map(keyToProto) };
    },

    async setDefaultAlgorithm(request, context) {
      const algorithm = requiredAlgorithm(request.algorithm);
      const keys = await stopWaitingWhenCancelled(context, () => tokens.setDefaultAlgorithm(algorithm));
      return { keys: keys.map(keyToProto) };
    },

    async retireAlgorithm(request, context) {
      const algorithm = requiredAlgorithm(request.algorithm);
      const keys = await stopWaitingWhenCancelled(context, () => tokens.retireAlgorithm(algorithm));
      return { keys: keys.map(keyToProto) };
    },

    async listKeys(_request, context) {
      const keys = await stopWaitingWhenCancelled(context, () => tokens.listKeys());
      return { keys: keys.map(keyToProto) };
    },

    async revokeKey(request, context) {
      const keys = await stopWaitingWhenCancelled(context, () => tokens.revokeKey(request.kid));
      return { keys: keys.map(keyToProto) };
    },
  };
}

const INACTIVE = Object.freeze(create(IntrospectResponseSchema, { active: false }));

// A shared active answer (core: one per token record, frozen) has one
// message, frozen too, so the gRPC port encodes it once (grpc/unary-service.ts).
const responses = new WeakMap<ActiveToken, IntrospectResponse>();

function introspectResponseOf(token: ActiveToken): IntrospectResponse {
  let response = responses.get(token);
  if (response === undefined) {
    response = create(IntrospectResponseSchema, {
      active: true,
      tokenId: token.tokenId,
      format: formatToProto(token.format),
      subject: token.subject,
      clientId: token.clientId,
      audience: token.audience,
      scopes: token.scopes,
      issuedAt: timestampFromMs(token.issuedAt),
      expiresAt: timestampFromMs(token.expiresAt),
      issuer: token.issuer,
      claims: token.claims,
      sessionId: token.sessionId,
      revocationSequence: BigInt(token.revocationSequence ?? 0),
    });
    if (Object.isFrozen(token)) responses.set(token, Object.freeze(response));
  }
  return response;
}

function recordTokenId(context: HandlerContext, tokenId: string): void {
  const details = callOf(context.values)?.details;
  if (details !== undefined) details.tokenId = tokenId;
}

function optionalAlgorithm(value: string): SigningAlgorithm | undefined {
  const name = value.trim();
  if (name === '') return undefined;
  validateAlgorithm(name);
  return name;
}

function requiredAlgorithm(value: string): SigningAlgorithm {
  const algorithm = optionalAlgorithm(value);
  if (algorithm === undefined) throw new InvalidArgumentError('algorithm', 'is required');
  return algorithm;
}

function nonEmpty(value: string): string | undefined {
  return value === '' ? undefined : value;
}

// Beyond this a lifetime is nonsense anyway, and milliseconds stay exact in a double.
const MAXIMUM_DURATION_SECONDS = 10n ** 11n;

/** Duration → milliseconds, refusing what no lifetime can be. Sub-millisecond parts are dropped. */
export function durationToMs(duration: Duration, field: string): number {
  const { seconds, nanos } = duration;
  if (seconds < 0n || nanos < 0) throw new InvalidArgumentError(field, 'must not be negative');
  if (nanos > 999_999_999) throw new InvalidArgumentError(field, 'nanos must be below one second');
  if (seconds > MAXIMUM_DURATION_SECONDS) throw new InvalidArgumentError(field, 'is too long');
  return Number(seconds) * 1000 + Math.floor(nanos / 1_000_000);
}

function formatFromProto(format: TokenFormat): CoreTokenFormat | undefined {
  switch (format) {
    case TokenFormat.UNSPECIFIED:
      return undefined;
    case TokenFormat.OPAQUE:
      return 'opaque';
    case TokenFormat.JWT:
      return 'jwt';
    default:
      // Open enums: a newer client can send a number this server does not know.
      throw new InvalidArgumentError('format', 'unknown token format');
  }
}

function formatToProto(format: CoreTokenFormat): TokenFormat {
  return format === 'jwt' ? TokenFormat.JWT : TokenFormat.OPAQUE;
}

const REVOKE_FIELD_NAMES = {
  token: 'token',
  tokenId: 'token_id',
  subject: 'subject',
  clientId: 'client_id',
  sessionId: 'session_id',
} as const;

export function revokeTargetFromProto(target: RevokeRequest['target']): RevokeTarget {
  if (target.case === undefined) {
    throw new InvalidArgumentError('target', 'set one of token, token_id, subject, client_id or session_id');
  }
  if (target.value === '') throw new InvalidArgumentError(REVOKE_FIELD_NAMES[target.case], 'must not be empty');
  switch (target.case) {
    case 'token':
      return { kind: 'token', token: target.value };
    case 'tokenId':
      return { kind: 'tokenId', tokenId: target.value };
    case 'subject':
      return { kind: 'subject', value: target.value };
    case 'clientId':
      return { kind: 'client', value: target.value };
    case 'sessionId':
      return { kind: 'session', value: target.value };
  }
}

const KEY_STATES: Record<CoreKeyState, KeyState> = {
  active: KeyState.ACTIVE,
  retiring: KeyState.RETIRING,
};

function keyToProto(key: PublicKeyInfo): MessageInitShape<typeof KeySchema> {
  return {
    kid: key.kid,
    algorithm: key.algorithm,
    state: KEY_STATES[key.state],
    isDefault: key.default,
    createdAt: timestampFromMs(key.createdAt),
    retiresAt: key.retiresAt === undefined ? undefined : timestampFromMs(key.retiresAt),
    publicJwk: key.publicJwk,
  };
}
