// Checks on what callers ask the core to do. Each failure names the field at
// fault (in proto snake_case, as callers see it) and never echoes a token.
import { InvalidArgumentError } from './errors.js';
import { OPAQUE_PREFIX } from './formats/opaque.js';
import { isSigningAlgorithm, SIGNING_ALGORITHMS, type IssueInput, type JsonObject, type RevokeTarget, type SigningAlgorithm, type TokenFormat } from './types.js';

export interface IssueLimits {
  defaultTtlMs: number;
  maxTtlMs: number;
  maxClaimsBytes: number;
}

export const LIMITS = {
  identifierLength: 256,
  audiences: 32,
  scopes: 64,
  scopeLength: 128,
  tokenIdLength: 64,
} as const;

// The defaults of the limits an operator may change (TALLY_MAX_TOKEN_LENGTH,
// TALLY_MAX_CLAIMS_BYTES): the settings table shows these constants.
/** Longer than any token a default Issue can mint: every field at its limit, signed with ML-DSA-87, is about 40,500. */
export const DEFAULT_MAX_TOKEN_LENGTH = 49_152;
export const DEFAULT_MAX_CLAIMS_BYTES = 8_192;

/** Claim names with a meaning of their own in JWTs (RFC 7519, RFC 9068) or RFC 7662 answers. */
const RESERVED_CLAIMS = new Set([
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'client_id', 'scope', 'sid',
  'typ', 'cnf', 'act', 'may_act', 'active', 'token_type', 'username', 'auth_time',
]);

// RFC 6749 §3.3 scope-token: printable ASCII but space, double quote and backslash.
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
// Letters, digits, '-', '_': the shape of every token id Tally hands out.
const TOKEN_ID = /^[A-Za-z0-9_-]+$/;
/** Every token id Tally hands out is 16 bytes in base64url; an opaque token is far longer. */
const TOKEN_ID_LENGTH = 22;

// Control characters would let an identifier forge log lines or headers.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function identifier(field: string, value: string | undefined, required: boolean): string {
  const text = value ?? '';
  if (text === '') {
    if (required) throw new InvalidArgumentError(field, 'is required');
    return '';
  }
  if (text.length > LIMITS.identifierLength) throw new InvalidArgumentError(field, `must be at most ${LIMITS.identifierLength} characters`);
  if (CONTROL.test(text)) throw new InvalidArgumentError(field, 'must not contain control characters');
  if (!text.isWellFormed()) throw new InvalidArgumentError(field, 'must be valid Unicode');
  return text;
}

export interface ValidIssue {
  subject: string;
  clientId: string;
  audience: string[];
  scopes: string[];
  sessionId: string;
  ttlMs: number;
  format: TokenFormat;
  claims: JsonObject;
}

export function validateIssue(input: IssueInput, limits: IssueLimits): ValidIssue {
  const subject = identifier('subject', input.subject, true);
  const clientId = identifier('client_id', input.clientId, false);
  const sessionId = identifier('session_id', input.sessionId, false);

  const audience = [...new Set(input.audience ?? [])];
  if (audience.length > LIMITS.audiences) throw new InvalidArgumentError('audience', `must name at most ${LIMITS.audiences} audiences`);
  audience.forEach((entry) => identifier('audience', entry, true));

  const scopes = [...new Set(input.scopes ?? [])];
  if (scopes.length > LIMITS.scopes) throw new InvalidArgumentError('scopes', `must hold at most ${LIMITS.scopes} scopes`);
  for (const scope of scopes) {
    if (scope.length > LIMITS.scopeLength) throw new InvalidArgumentError('scopes', `each scope must be at most ${LIMITS.scopeLength} characters`);
    if (!SCOPE_TOKEN.test(scope)) throw new InvalidArgumentError('scopes', 'a scope must be printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)');
  }

  const ttlMs = input.ttlMs ?? limits.defaultTtlMs;
  // Token times are whole seconds (JWT NumericDate), so shorter would expire at once.
  if (!Number.isFinite(ttlMs) || ttlMs < 1000) throw new InvalidArgumentError('ttl', 'must be at least 1s');
  if (ttlMs > limits.maxTtlMs) throw new InvalidArgumentError('ttl', `must be at most ${limits.maxTtlMs / 1000}s`);

  const claims = input.claims ?? {};
  for (const name of Object.keys(claims)) {
    // Case-insensitively: some verifiers and logs fold case, and "Sub" beside "sub" misleads them.
    if (RESERVED_CLAIMS.has(name.toLowerCase())) throw new InvalidArgumentError('claims', `"${name}" is a registered claim and cannot be set`);
  }
  checkClaimValues(claims);
  if (Buffer.byteLength(JSON.stringify(claims)) > limits.maxClaimsBytes) {
    throw new InvalidArgumentError('claims', `must be at most ${limits.maxClaimsBytes} bytes as JSON`);
  }

  const format = input.format ?? 'opaque';
  if (input.algorithm !== undefined) validateAlgorithm(input.algorithm);
  if (input.algorithm !== undefined && format !== 'jwt') {
    throw new InvalidArgumentError('algorithm', 'only a JWT is signed: set format to JWT, or leave algorithm empty');
  }

  return { subject, clientId, audience, scopes, sessionId, ttlMs, format, claims };
}

/** An algorithm name as callers send it; the one check for every field that names one. */
export function validateAlgorithm(name: string): asserts name is SigningAlgorithm {
  if (!isSigningAlgorithm(name)) throw new InvalidArgumentError('algorithm', `must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
}

/**
 * Claims must be answerable on every protocol: JSON has no NaN or Infinity
 * (a Struct over protobuf binary can carry them, and Connect JSON parses
 * 1e400 to Infinity), and "__proto__" is a key that JavaScript objects built
 * from the claims would take for their prototype.
 */
function checkClaimValues(value: unknown): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InvalidArgumentError('claims', 'numbers must be finite (no NaN or Infinity)');
    return;
  }
  if (Array.isArray(value)) {
    for (const entry of value) checkClaimValues(entry);
    return;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [name, entry] of Object.entries(value)) {
      if (name === '__proto__') throw new InvalidArgumentError('claims', '"__proto__" is not allowed as a claim name');
      checkClaimValues(entry);
    }
  }
}

export function validateRevokeTarget(target: RevokeTarget, maxTokenLength: number = DEFAULT_MAX_TOKEN_LENGTH): RevokeTarget {
  switch (target.kind) {
    case 'token':
      if (target.token === '') throw new InvalidArgumentError('token', 'is required');
      if (target.token.length > maxTokenLength) throw new InvalidArgumentError('token', `must be at most ${maxTokenLength} characters`);
      return target;
    case 'tokenId':
      if (target.tokenId === '') throw new InvalidArgumentError('token_id', 'is required');
      // A token pasted where its id goes: refused before anyone logs it as an id.
      if (target.tokenId.startsWith(OPAQUE_PREFIX) && target.tokenId.length > TOKEN_ID_LENGTH) {
        throw new InvalidArgumentError('token_id', 'holds a token, not a token id; revoke a token by the "token" field');
      }
      if (target.tokenId.length > LIMITS.tokenIdLength || !TOKEN_ID.test(target.tokenId)) {
        throw new InvalidArgumentError('token_id', 'is not a token id');
      }
      return target;
    case 'subject':
      return { kind: 'subject', value: identifier('subject', target.value, true) };
    case 'client':
      return { kind: 'client', value: identifier('client_id', target.value, true) };
    case 'session':
      return { kind: 'session', value: identifier('session_id', target.value, true) };
  }
}
