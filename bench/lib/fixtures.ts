// What the bench's token says. The bare server answers with a response built from
// the same values, so both sides of a ratio move messages of about the same size.
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  IntrospectResponseSchema,
  IssueRequestSchema,
  TokenFormat,
  type IssueRequest,
} from '../../src/gen/tally/v1/token_service_pb.js';

export const introspectPath = '/tally.v1.TokenService/Introspect';
export const issuePath = '/tally.v1.TokenService/Issue';
export const revokePath = '/tally.v1.TokenService/Revoke';

/** Shaped like an opaque token (`tly_` + 49 base62 characters) so request sizes match Tally's row. */
export const placeholderOpaqueToken = `tly_${'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM'}`;

/** The algorithms the bench signs JWTs with: the default, and the post-quantum one beside it. */
export type BenchJwtAlgorithm = 'EdDSA' | 'ML-DSA-65';

export function benchIssueRequest(format: TokenFormat = TokenFormat.OPAQUE, algorithm?: BenchJwtAlgorithm): IssueRequest {
  return create(IssueRequestSchema, {
    subject: 'bench-user-0001',
    clientId: 'bench-client',
    audience: ['orders'],
    scopes: ['orders:read', 'orders:write'],
    format,
    algorithm: algorithm ?? '',
  });
}

/** An active IntrospectResponse shaped like Tally's answer for benchIssueRequest(). */
export function bareIntrospectResponseBytes(): Uint8Array {
  const request = benchIssueRequest();
  // Whole seconds, as token times are: nanoseconds would add bytes Tally does not send.
  const now = Math.floor(Date.now() / 1_000) * 1_000;
  return toBinary(
    IntrospectResponseSchema,
    create(IntrospectResponseSchema, {
      active: true,
      // 128 bits in base64url, like an opaque token's id.
      tokenId: 'AAECAwQFBgcICQoLDA0ODw',
      format: request.format,
      subject: request.subject,
      clientId: request.clientId,
      audience: request.audience,
      scopes: request.scopes,
      issuedAt: timestampFromMs(now),
      expiresAt: timestampFromMs(now + 3_600_000),
      issuer: 'tally',
    }),
  );
}
