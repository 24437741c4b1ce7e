// The token service: issue, introspect, revoke and the key ring, given its
// ports. It knows nothing of gRPC, HTTP, Redis or logging.
//
// Revocation is ordered by the store's revocation sequence, not by clocks:
// Issue reads the sequence before it mints, and a subject, client or session
// revocation takes the next number. A token is revoked when a mark on one of
// its scopes is above the number it was issued under. So a token issued
// before a revocation began is covered, one whose Issue began after it
// returned is not, whatever the replicas' clocks say.
//
// Times (issued, expires, key retirement, how long a mark is kept) are all
// on the store's clock (store-clock.ts), so they mean one instant on every
// replica: a replica whose own clock is minutes off neither cuts a mark short
// nor keeps a token alive past the moment the others consider it expired.
import { hash } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Awaitable } from './awaitable.js';
import { InvalidArgumentError, KeyRingError } from './errors.js';
import { isWellFormedOpaqueToken, mintOpaqueToken, OPAQUE_PREFIX, opaqueTokenId } from './formats/opaque.js';
import { JWT_TYPE, jwtKeyId, looksLikeJwt, signAccessToken, verifyAccessToken } from './formats/jwt.js';
import { deriveInternalKey, type InternalKey, type InternalSigningAlgorithm } from './keys/internal-key.js';
import { createKeyManager } from './keys/key-manager.js';
import type { Clock, Randomness, Store, TraceStep } from './ports.js';
import { isAuthenticRecord, sealRecord } from './integrity.js';
import type { DerivedSecrets } from './secrets.js';
import { createStoreClock } from './store-clock.js';
import { systemClock, systemRandomness } from './system.js';
import type {
  ActiveToken,
  PublicJwk,
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
import { DEFAULT_MAX_CLAIMS_BYTES, DEFAULT_MAX_TOKEN_LENGTH, validateIssue, validateRevokeTarget } from './validation.js';

export interface TokenServiceOptions {
  store: Store;
  /** This replica's wall clock; every time is judged on the store's clock, read against this one. */
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
  /** Algorithm of the internal key that signs phantom tokens and RFC 9701 answers (unset: DEFAULT_INTERNAL_SIGNING_ALGORITHM, keys/internal-key.ts). */
  internalKeyAlgorithm?: InternalSigningAlgorithm;
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
  /** How many opaque tokens' ids to remember by digest (as many as the store caches records); 0: none. */
  tokenIdsToRemember?: number;
  /** Told of failures in background work (key ring refresh), which has no caller to tell. */
  onBackgroundError?: (error: unknown, task: string) => void;
  /**
   * Told when this replica's own clock is more than the clock skew off the
   * store's (and again with 0 when it is back within): harmless to Tally,
   * which judges times on the store's clock, but a sign that NTP is broken.
   */
  onClockOffset?: (localOffsetMs: number) => void;
  /**
   * Told of a value in the store that failed its MAC (core/integrity.ts): a
   * key-ring entry (by kid) or a token record (by token id). It was ignored;
   * someone without the master key wrote to the store.
   */
  onTampered?: (kind: 'key ring entry' | 'token record', id: string) => void;
  /** Signatures run through it, so a trace shows each apart; unset, they just run. */
  traceStep?: TraceStep;
}

export interface TokenService {
  /** Checks the master secret against the store, loads or creates the key ring and keeps it fresh. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Whether the key ring is loaded, so every call can be served. */
  ready(): boolean;
  issue(input: IssueInput): Promise<IssuedToken>;
  /**
   * Never throws for a bad token: the answer is inactive, with a reason for
   * logs and metrics only. Answers at once, without a promise, when this
   * process holds all the answer needs (an opaque token whose record is in
   * the store's local view, or a token that cannot be one of Tally's).
   */
  introspect(input: IntrospectInput): Awaitable<Introspection>;
  revoke(target: RevokeTarget, options?: RevokeOptions): Promise<void>;
  /** A new active key for the algorithm (the default's when undefined); other algorithms' keys are left alone. */
  rotateKeys(algorithm?: SigningAlgorithm): Promise<PublicKeyInfo[]>;
  /** The algorithm stops signing; its keys verify until their last token has expired. */
  retireAlgorithm(algorithm: SigningAlgorithm): Promise<PublicKeyInfo[]>;
  /** The algorithm signs JWTs whose Issue names none. */
  setDefaultAlgorithm(algorithm: SigningAlgorithm): Promise<PublicKeyInfo[]>;
  listKeys(): Promise<PublicKeyInfo[]>;
  /**
   * Pulls a key at once (a compromised key): every JWT it signed is inactive
   * on every replica once this returns, through the same mark, event and
   * lease machinery as revoke; then the key leaves the ring (and the JWKS),
   * an active key being replaced by a new one of its algorithm. A kid not in
   * the ring changes nothing. Answers the ring after.
   */
  revokeKey(kid: string): Promise<PublicKeyInfo[]>;
  /**
   * Signs claims with the internal key (keys/internal-key.ts), never a ring
   * key, with "iss", "iat" and "exp" (now + ttlMs) set and header "typ" as
   * given: for statements Tally makes about a token it has checked (an
   * internal JWT for the upstream, an RFC 9701 introspection answer),
   * verifiable with internalKeys() and never taken for an access token.
   */
  signStatement(claims: JsonObject, options: { type: string; ttlMs: number }): Promise<string>;
  /** The public JWKs internal JWTs verify with (the internal JWKS); apart from the ring's. */
  internalKeys(): PublicJwk[];
}

/** A kid as Tally makes them (RFC 7638 thumbprints), with room to spare; as the proto's rule. */
const KID = /^[A-Za-z0-9_-]{1,128}$/;

/** screen()'s answer for a token to verify as a JWT. */
const JWT_SHAPED = Symbol('a JWT to verify');

/** A stored token's record and, for a JWT, the kid of the key that signed it. */
interface Found {
  record: TokenRecord;
  kid?: string;
}
const TOKEN_ID_BYTES = 16;

const untraced: TraceStep = (_name, _attributes, run) => run();

function inactive(reason: InactiveReason, tokenId?: string): InactiveToken {
  return tokenId === undefined ? { active: false, reason } : { active: false, reason, tokenId };
}

function toWholeSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

/** Whether a caller limited to these audiences (undefined: not limited) may see the token. */
export function namesOneOf(record: TokenRecord, audiences: readonly string[] | undefined): boolean {
  return audiences === undefined || record.audience.some((audience) => audiences.includes(audience));
}

// Made once per shared (frozen) record: a cache hit asks for them on every call.
const scopesOfRecords = new WeakMap<TokenRecord, ReadonlyArray<readonly [MarkScope, string]>>();

function scopesOf(record: TokenRecord): ReadonlyArray<readonly [MarkScope, string]> {
  let scopes = scopesOfRecords.get(record);
  if (scopes !== undefined) return scopes;
  const made: Array<readonly [MarkScope, string]> = [['token', record.tokenId], ['subject', record.subject]];
  if (record.clientId) made.push(['client', record.clientId]);
  if (record.sessionId) made.push(['session', record.sessionId]);
  scopes = made;
  if (Object.isFrozen(record)) scopesOfRecords.set(record, Object.freeze(scopes));
  return scopes;
}

export function createTokenService(options: TokenServiceOptions): TokenService {
  const { store, secrets, issuer } = options;
  const traceStep = options.traceStep ?? untraced;
  // Half the skew per reading: two replicas then agree to within the skew.
  const clock = createStoreClock({ store, local: options.clock ?? systemClock, maxErrorMs: options.clockSkewMs / 2 });
  let clockWasOff = false;
  async function syncClock(): Promise<void> {
    await clock.sync();
    const offsetMs = clock.localOffsetMs();
    const off = Math.abs(offsetMs) > options.clockSkewMs;
    // Told on each change only, not on every reading.
    if (off !== clockWasOff) options.onClockOffset?.(off ? offsetMs : 0);
    clockWasOff = off;
  }
  const randomness = options.randomness ?? systemRandomness;
  // A token lives at most maxTtl; clocks may disagree by skew. Past both, nothing a key or a mark covers is alive.
  const everyTokenExpiredAfterMs = options.maxTtlMs + options.clockSkewMs;
  const limits = {
    defaultTtlMs: options.defaultTtlMs,
    maxTtlMs: options.maxTtlMs,
    maxClaimsBytes: options.maxClaimsBytes ?? DEFAULT_MAX_CLAIMS_BYTES,
  };
  const maxTokenLength = options.maxTokenLength ?? DEFAULT_MAX_TOKEN_LENGTH;
  const keys = createKeyManager({
    store,
    clock,
    randomness,
    keyEncryptionKey: secrets.keyEncryptionKey,
    integrityKey: secrets.integrityKey,
    onTamperedEntry: (kid) => options.onTampered?.('key ring entry', kid),
    defaultAlgorithm: options.keyAlgorithm,
    verifyForMs: everyTokenExpiredAfterMs,
    unknownKidReloadMs: Math.min(250, options.keyRefreshMs),
    rotationIntervalMs: options.keyRotationIntervalMs,
  });
  let refreshTimer: NodeJS.Timeout | undefined;
  let internalKey: InternalKey | undefined;
  // Records a store hands out again (a replica's cache) are checked once, not on every cache hit.
  const checkedRecords = new WeakSet<TokenRecord>();

  /** Whether the record is one Tally wrote under tokenId, unchanged (a forgery is reported). */
  function isAuthentic(record: TokenRecord, tokenId: string): boolean {
    if (checkedRecords.has(record)) return true;
    if (!isAuthenticRecord(record, secrets.integrityKey) || record.tokenId !== tokenId) {
      options.onTampered?.('token record', tokenId);
      return false;
    }
    checkedRecords.add(record);
    return true;
  }

  /** The record saved under tokenId if it is one Tally wrote, unchanged; otherwise undefined (and reported). */
  async function authenticRecord(tokenId: string): Promise<TokenRecord | undefined> {
    const record = await store.getToken(tokenId);
    return record !== undefined && isAuthentic(record, tokenId) ? record : undefined;
  }

  // An opaque token's id is an HMAC under the hash key, set up per call. For
  // a token this process has seen, a one-shot digest of it finds the id in a
  // bounded map instead: several times cheaper, and the map holds digests
  // and ids, never tokens, so a heap dump yields nothing to present
  // (docs/security.md, "What a replica holds in memory").
  const tokenIds = new Map<string, string>();
  const tokenIdsToRemember = options.tokenIdsToRemember ?? 0;
  function opaqueTokenIdOf(token: string): string {
    if (tokenIdsToRemember === 0) return opaqueTokenId(token, secrets.tokenHashKey);
    const digest = hash('sha256', token, 'base64url');
    let tokenId = tokenIds.get(digest);
    if (tokenId === undefined) {
      tokenId = opaqueTokenId(token, secrets.tokenHashKey);
      tokenIds.set(digest, tokenId);
      if (tokenIds.size > tokenIdsToRemember) tokenIds.delete(tokenIds.keys().next().value!);
    }
    return tokenId;
  }

  /** The record a token refers to (and for a JWT the kid that signed it), or why there is none. */
  async function findRecord(token: string): Promise<Found | InactiveToken> {
    const opaque = screen(token);
    if (opaque === JWT_SHAPED) return findJwtRecord(token);
    return typeof opaque === 'string' ? findOpaqueRecord(opaque) : opaque;
  }

  /**
   * What the token's shape says before any lookup: an opaque token's id, a
   * token that can be none of Tally's, or one to verify as a JWT.
   */
  function screen(token: string): string | InactiveToken | typeof JWT_SHAPED {
    if (token.length === 0 || token.length > maxTokenLength) return inactive('malformed');
    if (!token.startsWith(OPAQUE_PREFIX)) return JWT_SHAPED;
    if (!isWellFormedOpaqueToken(token)) return inactive('malformed');
    return opaqueTokenIdOf(token);
  }

  async function findOpaqueRecord(tokenId: string): Promise<Found | InactiveToken> {
    const record = await authenticRecord(tokenId);
    return record?.format === 'opaque' ? { record } : inactive('unknown', tokenId);
  }

  async function findJwtRecord(token: string): Promise<Found | InactiveToken> {
    if (!looksLikeJwt(token)) return inactive('malformed');
    const kid = jwtKeyId(token);
    if (kid === undefined) return inactive('malformed');
    const check = await verifyAccessToken(token, await keys.verificationKey(kid), { issuer, now: clock.now(), clockToleranceMs: options.clockSkewMs });
    if (!check.ok) return inactive(check.reason);
    const record = await authenticRecord(check.tokenId);
    return record?.format === 'jwt' && record.subject === check.subject ? { record, kid } : inactive('unknown', check.tokenId);
  }

  /** Whether a stored token is active now and fits what the caller demands (a token without a record is not). */
  async function decide(found: Found | InactiveToken, input: IntrospectInput): Promise<Introspection> {
    if ('active' in found) return found;
    const { record, kid } = found;
    const refused = judge(record, input);
    if (refused !== undefined) return refused;
    // Read before the marks (and on the same connection, so it is answered first): every
    // revocation numbered at or below it is then in the marks read next.
    const reflected = input.withRevocationSequence === true ? store.revocationSequence() : undefined;
    // Settled here if a mark read fails first; awaited below otherwise.
    reflected?.catch(() => {});
    // Last, because it is the one step that may cost a store round trip.
    if (record.sequence < (await store.revocationMark(scopesOf(record)))) return inactive('revoked', record.tokenId);
    // A JWT only: a mark on its signing key covers every JWT the key signed, whatever its sequence.
    if (kid !== undefined && (await store.revocationMark([['key', kid]])) > 0) return inactive('revoked', record.tokenId);
    return answerOf(record, reflected === undefined ? undefined : await reflected);
  }

  /**
   * The answer for an opaque token's id: at once, without a promise, when
   * its record and marks are in the store's local view; from the store
   * otherwise.
   */
  function introspectOpaque(tokenId: string, input: IntrospectInput): Awaitable<Introspection> {
    const local = store.localView?.();
    const record = local?.getToken(tokenId);
    if (local === undefined || record === undefined) return findOpaqueRecord(tokenId).then((found) => decide(found, input));
    if (record.format !== 'opaque' || !isAuthentic(record, tokenId)) return inactive('unknown', tokenId);
    const refused = judge(record, input);
    if (refused !== undefined) return refused;
    // Read before the marks, as decide() does; in memory both are of the same instant.
    const reflected = input.withRevocationSequence === true ? local.revocationSequence() : undefined;
    return record.sequence < local.revocationMark(scopesOf(record)) ? inactive('revoked', record.tokenId) : answerOf(record, reflected);
  }

  /**
   * Why a stored token is not active now or does not fit what the caller
   * demands, judged on the record alone; undefined when it passes. Its
   * revocation marks are checked after, being the one step that may cost a
   * store round trip.
   */
  function judge(record: TokenRecord, input: IntrospectInput): InactiveToken | undefined {
    if (!namesOneOf(record, input.callerAudiences)) return inactive('caller_audience', record.tokenId);
    if (clock.now() >= record.expiresAt) return inactive('expired', record.tokenId);
    if (input.audience && !record.audience.includes(input.audience)) return inactive('wrong_audience', record.tokenId);
    if (input.requiredScopes?.some((scope) => !record.scopes.includes(scope))) return inactive('missing_scope', record.tokenId);
    return undefined;
  }

  // The active answer is the record's and the issuer's only (and, for a
  // holder of a local view, the revocation sequence it reflects), so it is
  // made once per record, or once per record and sequence, which moves only
  // as revocations happen, and shared, frozen, by every caller that gets it.
  const answers = new WeakMap<TokenRecord, ActiveToken>();
  const sequencedAnswers = new WeakMap<TokenRecord, ActiveToken>();
  function answerOf(record: TokenRecord, revocationSequence?: number): ActiveToken {
    const kept = revocationSequence === undefined ? answers : sequencedAnswers;
    let answer = kept.get(record);
    if (answer === undefined || answer.revocationSequence !== revocationSequence) {
      answer = {
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
      if (revocationSequence !== undefined) answer.revocationSequence = revocationSequence;
      // Only a record nothing can change (a store's shared copy) may share its answer.
      if (Object.isFrozen(record)) kept.set(record, Object.freeze(answer));
    }
    return answer;
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
      internalKey = await deriveInternalKey(secrets.internalSigningSeed, options.internalKeyAlgorithm);
      await syncClock();
      await keys.load();
      refreshTimer = setInterval(() => {
        syncClock().catch((error: unknown) => options.onBackgroundError?.(error, 'store clock reading'));
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
      // The time first: a revocation numbered above the sequence read next began after it,
      // so the revocation's keep time (counted from then) covers this token's whole life.
      const issuedAt = toWholeSeconds(clock.now());
      // Read before minting: a revocation that returned before this point has a number at or below it.
      const sequence = await store.revocationSequence();
      const expiresAt = toWholeSeconds(issuedAt + request.ttlMs);
      let token: string;
      let tokenId: string;
      let algorithm: SigningAlgorithm | undefined;
      if (request.format === 'jwt') {
        tokenId = Buffer.from(randomness.bytes(TOKEN_ID_BYTES)).toString('base64url');
        const key = await keys.currentSigningKey(input.algorithm);
        algorithm = key.algorithm;
        token = await traceStep(`sign ${JWT_TYPE}`, { 'tally.jwt.algorithm': key.algorithm, 'tally.jwt.kid': key.kid }, () =>
          signAccessToken({ ...request, issuer, tokenId, issuedAt, expiresAt, extra: request.claims }, key),
        );
        // A token this service would refuse to introspect must not be handed out.
        if (token.length > maxTokenLength) {
          throw new InvalidArgumentError('claims', `the JWT would be longer than the ${maxTokenLength} characters a token may have; send fewer claims, audiences or scopes`);
        }
      } else {
        token = mintOpaqueToken(randomness);
        tokenId = opaqueTokenId(token, secrets.tokenHashKey);
      }
      const record = sealRecord({
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
      }, secrets.integrityKey);
      checkedRecords.add(record);
      await store.putToken(record);
      const issued: IssuedToken = { token, tokenId, format: request.format, issuedAt, expiresAt };
      if (algorithm !== undefined) issued.algorithm = algorithm;
      return issued;
    },

    introspect(input) {
      const opaque = screen(input.token);
      // The hot path: an opaque token this process holds is answered with no promise.
      if (typeof opaque === 'string') return introspectOpaque(opaque, input);
      if (opaque !== JWT_SHAPED) return opaque;
      return findJwtRecord(input.token).then((found) => decide(found, input));
    },

    async revoke(target, revokeOptions = {}) {
      const valid = validateRevokeTarget(target, maxTokenLength);
      const { callerAudiences } = revokeOptions;
      switch (valid.kind) {
        case 'token': {
          // Expired, forged and malformed tokens name no record: nothing to revoke.
          const found = await findRecord(valid.token);
          if (!('active' in found)) await revokeRecord(found.record, callerAudiences);
          return;
        }
        case 'tokenId': {
          // Only ids that exist get a mark, so revoking made-up ids cannot fill the store.
          const record = await authenticRecord(valid.tokenId);
          if (record !== undefined) await revokeRecord(record, callerAudiences);
          return;
        }
        default:
          await store.revokeScope(valid.kind, valid.value, everyTokenExpiredAfterMs);
      }
    },

    rotateKeys: (algorithm) => keys.rotate(algorithm),
    retireAlgorithm: (algorithm) => keys.retire(algorithm),
    setDefaultAlgorithm: (algorithm) => keys.makeDefault(algorithm),

    async listKeys() {
      await keys.refresh();
      return keys.list();
    },

    async revokeKey(kid) {
      if (!KID.test(kid)) throw new InvalidArgumentError('kid', 'must be 1 to 128 letters, digits, "-" or "_", as ListKeys shows it');
      // Only keys in the ring get a mark: one not in it already verifies nothing anywhere.
      if (!(await keys.holds(kid))) return keys.list();
      // First the mark, so that once it returns no replica answers active for a JWT of the key;
      // then the ring change, so the key stops signing and leaves the JWKS.
      await store.revokeScope('key', kid, everyTokenExpiredAfterMs);
      return keys.remove(kid);
    },

    async signStatement(claims, { type, ttlMs }) {
      const key = internalKey;
      if (key === undefined) throw new KeyRingError('the internal signing key is not loaded yet');
      const now = Math.floor(clock.now() / 1000);
      return traceStep(`sign ${type}`, { 'tally.jwt.algorithm': key.algorithm, 'tally.jwt.kid': key.kid }, () =>
        new SignJWT({ ...claims })
          .setProtectedHeader({ alg: key.algorithm, typ: type, kid: key.kid })
          .setIssuer(issuer)
          .setIssuedAt(now)
          .setExpirationTime(now + Math.max(1, Math.ceil(ttlMs / 1000)))
          .sign(key.privateKey),
      );
    },

    internalKeys: () => (internalKey === undefined ? [] : [internalKey.publicJwk]),
  };
}
