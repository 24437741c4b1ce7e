// Domain types shared by the core, the stores and the transports. Times are
// milliseconds since the Unix epoch throughout.

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export type TokenFormat = 'opaque' | 'jwt';

export const CLASSICAL_SIGNING_ALGORITHMS = ['EdDSA', 'ES256', 'ES384', 'RS256', 'PS256'] as const;
/** ML-DSA (FIPS 204) as JOSE names it (RFC 9964): keys of kty "AKP". */
export const POST_QUANTUM_SIGNING_ALGORITHMS = ['ML-DSA-44', 'ML-DSA-65', 'ML-DSA-87'] as const;
export const SIGNING_ALGORITHMS = [...CLASSICAL_SIGNING_ALGORITHMS, ...POST_QUANTUM_SIGNING_ALGORITHMS] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export function isSigningAlgorithm(value: string): value is SigningAlgorithm {
  return (SIGNING_ALGORITHMS as readonly string[]).includes(value);
}

/**
 * What the store keeps for every token, opaque or JWT, under its token id.
 * It holds nothing secret: the id of an opaque token is a keyed hash of it.
 */
export interface TokenRecord {
  tokenId: string;
  format: TokenFormat;
  subject: string;
  /** '' when the token has no client. */
  clientId: string;
  audience: string[];
  scopes: string[];
  /** '' when the token has no session. */
  sessionId: string;
  claims: JsonObject;
  issuedAt: number;
  expiresAt: number;
  /**
   * The store's revocation sequence read when Issue began. A subject, client
   * or session revocation numbered above it covers the token; one numbered at
   * or below it came first and does not. No wall clock takes part.
   */
  sequence: number;
  /** MAC of every other field under the integrity key (core/integrity.ts); a record without a good one is not Tally's. */
  mac?: string;
}

export type RevocationScope = 'subject' | 'client' | 'session';

/**
 * What a revocation mark can cover: every token of a subject, client or
 * session, or one token by its id. Revoking a single token is a mark too, so
 * token records never change once written and any replica may cache them.
 * A 'key' mark (RevokeKey) covers every JWT its kid signed, whatever the
 * JWT's sequence: a key once pulled signs nothing valid again.
 */
export type MarkScope = RevocationScope | 'token' | 'key';

export type RevokeTarget =
  | { kind: 'token'; token: string }
  | { kind: 'tokenId'; tokenId: string }
  | { kind: RevocationScope; value: string };

export interface IssueInput {
  subject: string;
  clientId?: string;
  audience?: string[];
  scopes?: string[];
  /** Lifetime in milliseconds; undefined means the configured default. */
  ttlMs?: number;
  format?: TokenFormat;
  claims?: JsonObject;
  sessionId?: string;
  /** Which active signing algorithm signs a JWT; undefined means the ring's default. */
  algorithm?: SigningAlgorithm;
}

export interface IssuedToken {
  token: string;
  tokenId: string;
  format: TokenFormat;
  issuedAt: number;
  expiresAt: number;
  /** The algorithm that signed a JWT; unset for opaque tokens. */
  algorithm?: SigningAlgorithm;
}

export interface IntrospectInput {
  token: string;
  audience?: string;
  requiredScopes?: string[];
  /**
   * The asking caller's own audiences, when it is limited to them: a token
   * naming none of them is inactive to it (RFC 7662 §4), so a caller cannot
   * scan for tokens meant for others.
   */
  callerAudiences?: readonly string[];
  /**
   * Say in an active answer which revocation sequence it reflects
   * (ActiveToken.revocationSequence), for holders of a local view.
   */
  withRevocationSequence?: boolean;
}

export interface RevokeOptions {
  /** As for introspection: a limited caller can only revoke tokens naming one of its audiences. */
  callerAudiences?: readonly string[];
}

/** Why a token is not active. For logs and metrics only: never sent to the caller. */
export type InactiveReason =
  | 'malformed'
  | 'unknown'
  | 'expired'
  | 'not_yet_valid'
  | 'revoked'
  | 'bad_signature'
  | 'unknown_key'
  | 'wrong_audience'
  | 'missing_scope'
  | 'caller_audience';

export interface ActiveToken {
  active: true;
  tokenId: string;
  format: TokenFormat;
  subject: string;
  clientId: string;
  audience: string[];
  scopes: string[];
  sessionId: string;
  claims: JsonObject;
  issuedAt: number;
  expiresAt: number;
  issuer: string;
  /**
   * Set when IntrospectInput.withRevocationSequence asked: every revocation
   * numbered at or below it was accounted for in this answer.
   */
  revocationSequence?: number;
}

export interface InactiveToken {
  active: false;
  reason: InactiveReason;
  /** Set when the token was well formed enough to name one; for logs. */
  tokenId?: string;
}

export type Introspection = ActiveToken | InactiveToken;

export type KeyState = 'active' | 'retiring';

/** A public JWK as jose exports it. */
export type PublicJwk = JsonObject;

/** One signing key as the store keeps it: the private part sealed. */
export interface StoredKey {
  kid: string;
  algorithm: SigningAlgorithm;
  state: KeyState;
  /**
   * Set on the one active key that signs when Issue names no algorithm. A
   * ring written before there could be several active keys has none set:
   * its only active key is the default.
   */
  default?: true;
  createdAt: number;
  /** Set once the key stops signing: when it leaves the ring. */
  retiresAt?: number;
  publicJwk: PublicJwk;
  /** The private JWK, encrypted under the key-encryption key (base64). */
  sealedPrivateKey: string;
  /** MAC of every other field under the integrity key (keys/ring-mac.ts); an entry without a good one is ignored. */
  mac?: string;
}

export interface KeyRingSnapshot {
  /** 0 when no ring was ever written. Every write increases it. */
  version: number;
  keys: StoredKey[];
  /**
   * Which setting-up of the store the ring belongs to, where a store can lose
   * its data and be set up again: a ring of the same version under another
   * identity is another ring. Undefined where a store cannot.
   */
  storeIdentity?: string;
}

/** A key as ListKeys shows it: public parts only. */
export interface PublicKeyInfo {
  kid: string;
  algorithm: SigningAlgorithm;
  state: KeyState;
  /** Whether this key signs when Issue names no algorithm. */
  default: boolean;
  createdAt: number;
  retiresAt?: number;
  publicJwk: PublicJwk;
}
