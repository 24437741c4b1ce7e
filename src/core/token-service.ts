// The token service: issue, introspect, revoke and the key ring, given its
// ports. It knows nothing of gRPC, HTTP, Redis or logging.
//
// Revocation is ordered by the store's revocation sequence, not by clocks:
// Issue reads the sequence before it mints, and a subject, client or session
// revocation takes the next number. A token is revoked when a mark on one of
// its scopes is above the number it was issued under. So a token issued
// before a revocation began is covered, one whose Issue began after it
// returned is not, whatever the replicas' clocks say.
import { SignJWT } from 'jose';
import { InvalidArgumentError, KeyRingError } from './errors.js';
import { isWellFormedOpaqueToken, mintOpaqueToken, OPAQUE_PREFIX, opaqueTokenId } from './formats/opaque.js';
import { jwtKeyId, looksLikeJwt, signAccessToken, verifyAccessToken } from './formats/jwt.js';
import { createKeyManager } from './keys/key-manager.js';
import type { Clock, Randomness, Store } from './ports.js';
import type { DerivedSecrets } from './secrets.js';
import { systemClock, systemRandomness } from './system.js';
import type {
  InactiveReason,
  InactiveToken,
  IntrospectInput,
  MarkScope,
  Introspection,
  IssuedToken,
  IssueInput,
  JsonObject,
  PublicKeyInfo,
  RevokeOptions,
  RevokeTarget,
  SigningAlgorithm,
  TokenRecord,
} from './types.js';
import { LIMITS, validateIssue, validateRevokeTarget } from './validation.js';

export interface TokenServiceOptions {
  store: Store;
  clock?: Clock;
  randomness?: Randomness;
  secrets: DerivedSecrets;
  /** The "iss" of every token. */
  issuer: string;
  defaultTtlMs: number;
  maxTtlMs: number;
  clockSkewMs: number;
  /** Algorithm of the first key (the default). Rotations that name none rotate the default key. */
  keyAlgorithm: SigningAlgorithm;
  /** How often the key ring is re-read from the store (and a scheduled rotation checked). */
  keyRefreshMs: number;
  /** Replace the active key once it is this old; undefined: only on RotateKeys. */
  keyRotationIntervalMs?: number;
  /** Largest extra-claims object, as JSON bytes. */
  maxClaimsBytes?: number;
  /**
   * Longest token accepted, in characters: longer ones introspect inactive
   * and cannot be revoked by value, and Issue refuses to mint one.
   */
  maxTokenLength?: number;
  /** Told of failures in background work (key ring refresh), which has no caller to tell. */
  onBackgroundError?: (error: unknown, task: string) => void;
}

export interface TokenService {
  /** Checks the master secret against the store, loads or creates the key ring and keeps it fresh. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Whether the key ring is loaded, so every call can be served. */
  ready(): boolean;
  issue(input: IssueInput): Promise<IssuedToken>;
  /** Never throws for a bad token: the answer is inactive, with a reason for logs and metrics only. */
  introspect(input: IntrospectInput): Promise<Introspection>;
  revoke(target: RevokeTarget, options?: RevokeOptions): Promise<void>;
  /** A new active key for the algorithm (the default's when undefined); other algorithms' keys are left alone. */
  rotateKeys(algorithm?: SigningAlgorithm): Promise<PublicKeyInfo[]>;
  /** The algorithm stops signing; its keys verify until their last token has expired. */
  retireAlgorithm(algorithm: SigningAlgorithm): Promise<PublicKeyInfo[]>;
  /** The algorithm signs JWTs whose Issue names none. */
  setDefaultAlgorithm(algorithm: SigningAlgorithm): Promise<PublicKeyInfo[]>;
  listKeys(): Promise<PublicKeyInfo[]>;
  /**
   * Signs claims with the active key, with "iss", "iat" and "exp" (now +
   * ttlMs) set and header "typ" as given: for statements Tally makes about a
   * token it has checked (an internal JWT for the upstream, an RFC 9701
   * introspection answer), verifiable with the JWKS.
   */
  signStatement(claims: JsonObject, options: { type: string; ttlMs: number }): Promise<string>;
}

const DEFAULT_MAX_CLAIMS_BYTES = 8_192;
const TOKEN_ID_BYTES = 16;

function inactive(reason: InactiveReason, tokenId?: string): InactiveToken {
  return tokenId === undefined ? { active: false, reason } : { active: false, reason, tokenId };
}

function toWholeSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

function namesOneOf(record: TokenRecord, audiences: readonly string[] | undefined): boolean {
  return audiences === undefined || record.audience.some((audience) => audiences.includes(audience));
}

function scopesOf(record: TokenRecord): Array<readonly [MarkScope, string]> {
  const scopes: Array<readonly [MarkScope, string]> = [['token', record.tokenId], ['subject', record.subject]];
  if (record.clientId) scopes.push(['client', record.clientId]);
  if (record.sessionId) scopes.push(['session', record.sessionId]);
  return scopes;
}

export function createTokenService(options: TokenServiceOptions): TokenService {
  const { store, secrets, issuer } = options;
  const clock = options.clock ?? systemClock;
  const randomness = options.randomness ?? systemRandomness;
  // A token lives at most maxTtl; clocks may disagree by skew. Past both, nothing a key or a mark covers is alive.
  const coverMs = options.maxTtlMs + options.clockSkewMs;
  const limits = {
    defaultTtlMs: options.defaultTtlMs,
    maxTtlMs: options.maxTtlMs,
    maxClaimsBytes: options.maxClaimsBytes ?? DEFAULT_MAX_CLAIMS_BYTES,
  };
  const maxTokenLength = options.maxTokenLength ?? LIMITS.tokenLength;
  const keys = createKeyManager({
    store,
    clock,
    randomness,
    keyEncryptionKey: secrets.keyEncryptionKey,
    defaultAlgorithm: options.keyAlgorithm,
    verifyForMs: coverMs,
    unknownKidReloadMs: Math.min(250, options.keyRefreshMs),
    rotationIntervalMs: options.keyRotationIntervalMs,
  });
  let refreshTimer: NodeJS.Timeout | undefined;

  /** The record a token refers to, or why there is none. */
  async function findRecord(token: string): Promise<TokenRecord | InactiveToken> {
    if (token.length === 0 || token.length > maxTokenLength) return inactive('malformed');
    if (token.startsWith(OPAQUE_PREFIX)) {
      if (!isWellFormedOpaqueToken(token)) return inactive('malformed');
      const tokenId = opaqueTokenId(token, secrets.tokenHashKey);
      const record = await store.getToken(tokenId);
      return record?.format === 'opaque' ? record : inactive('unknown', tokenId);
    }
    if (!looksLikeJwt(token)) return inactive('malformed');
    const kid = jwtKeyId(token);
    if (kid === undefined) return inactive('malformed');
    const check = await verifyAccessToken(token, await keys.verificationKey(kid), { issuer, now: clock.now() });
    if (!check.ok) return inactive(check.reason);
    const record = await store.getToken(check.tokenId);
    return record?.format === 'jwt' && record.subject === check.subject ? record : inactive('unknown', check.tokenId);
  }

  /** Whether a stored token is active now and fits what the caller demands. */
  async function decide(record: TokenRecord, input: IntrospectInput): Promise<Introspection> {
    if (!namesOneOf(record, input.callerAudiences)) return inactive('caller_audience', record.tokenId);
    if (clock.now() >= record.expiresAt) return inactive('expired', record.tokenId);
    if (input.audience && !record.audience.includes(input.audience)) return inactive('wrong_audience', record.tokenId);
    if (input.requiredScopes?.some((scope) => !record.scopes.includes(scope))) return inactive('missing_scope', record.tokenId);
    // Last, because it is the one step that may cost a store round trip.
    if (record.sequence < (await store.revocationMark(scopesOf(record)))) return inactive('revoked', record.tokenId);
    return {
      active: true,
      tokenId: record.tokenId,
      format: record.format,
      subject: record.subject,
      clientId: record.clientId,
      audience: record.audience,
      scopes: record.scopes,
      sessionId: record.sessionId,
      claims: record.claims,
      issuedAt: record.issuedAt,
      expiresAt: record.expiresAt,
      issuer,
    };
  }

  async function revokeRecord(record: TokenRecord, callerAudiences: readonly string[] | undefined): Promise<void> {
    if (!namesOneOf(record, callerAudiences)) return;
    const remainingMs = record.expiresAt - clock.now();
    if (remainingMs <= 0) return;
    await store.revokeScope('token', record.tokenId, remainingMs + options.clockSkewMs);
  }

  return {
    async start() {
      if (!(await store.checkSecretFingerprint(secrets.fingerprint))) {
        throw new KeyRingError('the store was set up under another master key; every replica must use the same TALLY_MASTER_KEY');
      }
      await keys.load();
      refreshTimer = setInterval(() => {
        keys.refresh().catch((error: unknown) => options.onBackgroundError?.(error, 'key ring refresh'));
      }, options.keyRefreshMs);
      refreshTimer.unref();
    },

    async stop() {
      clearInterval(refreshTimer);
    },

    ready: () => keys.loaded(),

    async issue(input) {
      const request = validateIssue(input, limits);
      // Read before minting: a revocation that returned before this point has a number at or below it.
      const sequence = await store.revocationSequence();
      const issuedAt = toWholeSeconds(clock.now());
      const expiresAt = toWholeSeconds(issuedAt + request.ttlMs);
      let token: string;
      let tokenId: string;
      let algorithm: SigningAlgorithm | undefined;
      if (request.format === 'jwt') {
        tokenId = Buffer.from(randomness.bytes(TOKEN_ID_BYTES)).toString('base64url');
        const key = await keys.currentSigningKey(input.algorithm);
        algorithm = key.algorithm;
        token = await signAccessToken({ ...request, issuer, tokenId, issuedAt, expiresAt, extra: request.claims }, key);
        // A token this service would refuse to introspect must not be handed out.
        if (token.length > maxTokenLength) {
          throw new InvalidArgumentError('claims', `the JWT would be longer than the ${maxTokenLength} characters a token may have; send fewer claims, audiences or scopes`);
        }
      } else {
        token = mintOpaqueToken(randomness);
        tokenId = opaqueTokenId(token, secrets.tokenHashKey);
      }
      await store.putToken({
        tokenId,
        format: request.format,
        subject: request.subject,
        clientId: request.clientId,
        audience: request.audience,
        scopes: request.scopes,
        sessionId: request.sessionId,
        claims: request.claims,
        issuedAt,
        expiresAt,
        sequence,
      });
      const issued: IssuedToken = { token, tokenId, format: request.format, issuedAt, expiresAt };
      if (algorithm !== undefined) issued.algorithm = algorithm;
      return issued;
    },

    async introspect(input) {
      const found = await findRecord(input.token);
      return 'active' in found ? found : decide(found, input);
    },

    async revoke(target, revokeOptions = {}) {
      const valid = validateRevokeTarget(target, maxTokenLength);
      const { callerAudiences } = revokeOptions;
      switch (valid.kind) {
        case 'token': {
          // Expired, forged and malformed tokens name no record: nothing to revoke.
          const found = await findRecord(valid.token);
          if (!('active' in found)) await revokeRecord(found, callerAudiences);
          return;
        }
        case 'tokenId': {
          // Only ids that exist get a mark, so revoking made-up ids cannot fill the store.
          const record = await store.getToken(valid.tokenId);
          if (record !== undefined) await revokeRecord(record, callerAudiences);
          return;
        }
        default:
          await store.revokeScope(valid.kind, valid.value, coverMs);
      }
    },

    rotateKeys: (algorithm) => keys.rotate(algorithm),
    retireAlgorithm: (algorithm) => keys.retire(algorithm),
    setDefaultAlgorithm: (algorithm) => keys.makeDefault(algorithm),

    async listKeys() {
      await keys.refresh();
      return keys.list();
    },

    async signStatement(claims, { type, ttlMs }) {
      const key = keys.signingKey();
      const now = Math.floor(clock.now() / 1000);
      return new SignJWT({ ...claims })
        .setProtectedHeader({ alg: key.algorithm, typ: type, kid: key.kid })
        .setIssuer(issuer)
        .setIssuedAt(now)
        .setExpirationTime(now + Math.max(1, Math.ceil(ttlMs / 1000)))
        .sign(key.privateKey);
    },
  };
}
