// The one mapping of a token's facts to JWT registered claims (RFC 7519 §4.1,
// RFC 9068 §2.2, RFC 7662 §2.2). The JWT format, the RFC 7662 JSON answer,
// the RFC 9701 signed answer (which carries that JSON) and the phantom token
// all write a token's claims through here, so no two of them can disagree.
//
// Rules, the same on every path:
// - aud: a string for one audience, an array for several, absent for none.
//   RFC 7519 §4.1.3 allows either shape; RFC 9068 §2.2 and RFC 7662 §2.2 show a
//   single audience as a string, which is what most verifiers and resource
//   servers are written against, and the access-token JWT (the form in most
//   hands) has always written it so.
// - scope, client_id, sid: absent when empty (an empty string names nothing).
// - nbf: never written. A Tally token is valid from the moment it is issued,
//   so an nbf could only repeat iat, and a verifier whose clock runs behind
//   would then refuse a token that was just handed out.
// - iat, exp: whole seconds, rounded down.
// - The token's extra claims come first and cannot override a registered one
//   (validation refuses them at Issue; the order here makes sure).

import type { JsonObject } from './types.js';

/** What a token says about itself, in Tally's own terms. */
export interface TokenFacts {
  issuer: string;
  subject: string;
  clientId: string;
  audience: readonly string[];
  scopes: readonly string[];
  sessionId: string;
  tokenId: string;
  /** Milliseconds since the epoch. */
  issuedAt: number;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/** The registered claims of a token (iss, sub, aud, scope, client_id, sid, iat, exp, jti), by the rules above. */
function registeredClaims(facts: TokenFacts): JsonObject {
  const claims: JsonObject = { iss: facts.issuer, sub: facts.subject };
  const aud = audienceClaim(facts.audience);
  if (aud !== undefined) claims.aud = aud;
  if (facts.scopes.length > 0) claims.scope = facts.scopes.join(' ');
  if (facts.clientId !== '') claims.client_id = facts.clientId;
  if (facts.sessionId !== '') claims.sid = facts.sessionId;
  claims.iat = Math.floor(facts.issuedAt / 1000);
  claims.exp = Math.floor(facts.expiresAt / 1000);
  claims.jti = facts.tokenId;
  return claims;
}

/** The token's extra claims, then its registered claims over them. */
export function tokenClaims(facts: TokenFacts, extra: JsonObject): JsonObject {
  return { ...extra, ...registeredClaims(facts) };
}

/** One audience as a string, several as an array, none as undefined (the claim left out). */
function audienceClaim(audience: readonly string[]): string | string[] | undefined {
  if (audience.length === 0) return undefined;
  return audience.length === 1 ? audience[0]! : [...audience];
}
