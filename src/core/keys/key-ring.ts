// The key ring as the core uses it: the store's snapshot with the keys
// imported for jose. The ring holds one active signing key per algorithm in
// use (so classical and post-quantum keys can sign side by side while
// verifiers migrate), one of them the default; retiring keys only verify.
// Only active keys' private parts are ever opened.
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { FailedPreconditionError, KeyRingError } from '../errors.js';
import type { Randomness } from '../ports.js';
import type { KeyRingSnapshot, PublicKeyInfo, SigningAlgorithm, StoredKey } from '../types.js';
import { openPrivateKey, sealPrivateKey } from './key-encryption.js';

export interface VerificationKey {
  kid: string;
  algorithm: SigningAlgorithm;
  publicKey: CryptoKey;
}

export interface SigningKey extends VerificationKey {
  privateKey: CryptoKey;
}

export interface KeyRing {
  version: number;
  /** The active key of each algorithm in use. */
  signing: ReadonlyMap<SigningAlgorithm, SigningKey>;
  /** The algorithm that signs when Issue names none. */
  defaultAlgorithm: SigningAlgorithm;
  verifying: ReadonlyMap<string, VerificationKey>;
  stored: readonly StoredKey[];
}

export async function generateStoredKey(
  algorithm: SigningAlgorithm,
  createdAt: number,
  keyEncryptionKey: Uint8Array,
  randomness: Randomness,
): Promise<StoredKey> {
  let pair: Awaited<ReturnType<typeof generateKeyPair>>;
  try {
    pair = await generateKeyPair(algorithm, { extractable: true });
  } catch (cause) {
    // A runtime without the algorithm (ML-DSA needs Node.js 24.7 or later with OpenSSL 3.5).
    throw new FailedPreconditionError(`algorithm: this runtime cannot make ${algorithm} keys (${(cause as Error).message})`);
  }
  const publicJwk = await exportJWK(pair.publicKey);
  // The RFC 7638 thumbprint: a kid anyone can recompute from the public key.
  const kid = await calculateJwkThumbprint(publicJwk);
  // For ML-DSA (RFC 9964) the private JWK holds the 32-byte seed as "priv": sealed like any other.
  const privateJwk = JSON.stringify(await exportJWK(pair.privateKey));
  return {
    kid,
    algorithm,
    state: 'active',
    createdAt,
    publicJwk: { ...publicJwk, kid, alg: algorithm, use: 'sig' } as StoredKey['publicJwk'],
    sealedPrivateKey: sealPrivateKey(privateJwk, kid, keyEncryptionKey, randomness),
  };
}

/** Whether a key has passed the point where every token it signed has expired. */
export function isRetired(key: StoredKey, now: number): boolean {
  return key.retiresAt !== undefined && key.retiresAt <= now;
}

/** The active keys of a stored ring, and which one is the default (see StoredKey.default). */
export function activeKeys(keys: readonly StoredKey[]): { active: StoredKey[]; defaultKey: StoredKey | undefined } {
  const active = keys.filter((key) => key.state === 'active');
  const flagged = active.filter((key) => key.default === true);
  const defaultKey = flagged.length === 1 ? flagged[0] : flagged.length === 0 && active.length === 1 ? active[0] : undefined;
  return { active, defaultKey };
}

function retire(key: StoredKey, now: number, verifyForMs: number): StoredKey {
  const { default: _wasDefault, ...rest } = key;
  return { ...rest, state: 'retiring', retiresAt: now + verifyForMs };
}

/**
 * The ring after making newKey the active key of its algorithm: the key it
 * replaces keeps verifying until every token it could have signed has
 * expired, and passes on being the default; keys of other algorithms are left
 * alone; retired keys leave. The first key of a ring is its default.
 */
export function ringAfterRotation(keys: readonly StoredKey[], newKey: StoredKey, now: number, verifyForMs: number): StoredKey[] {
  const kept = keys.filter((key) => !isRetired(key, now));
  const { defaultKey } = activeKeys(kept);
  const replaced = kept.find((key) => key.state === 'active' && key.algorithm === newKey.algorithm);
  const becomesDefault = defaultKey === undefined || defaultKey === replaced;
  return [
    ...kept.map((key): StoredKey => {
      if (key === replaced) return retire(key, now, verifyForMs);
      // A ring written before several keys could be active marks none: its one active key is the default, and now says so.
      if (key === defaultKey) return { ...key, default: true };
      return key;
    }),
    becomesDefault ? { ...newKey, default: true } : newKey,
  ];
}

/** The ring after an algorithm's active key stops signing; it verifies until its tokens have expired. */
export function ringAfterRetiring(keys: readonly StoredKey[], algorithm: SigningAlgorithm, now: number, verifyForMs: number): StoredKey[] {
  const kept = keys.filter((key) => !isRetired(key, now));
  const { defaultKey } = activeKeys(kept);
  const target = kept.find((key) => key.state === 'active' && key.algorithm === algorithm);
  if (target === undefined) throw new FailedPreconditionError(`algorithm: ${algorithm} has no active key to retire`);
  if (target === defaultKey) {
    throw new FailedPreconditionError(`algorithm: ${algorithm} is the default; make another algorithm the default before retiring it`);
  }
  return kept.map((key) => (key === target ? retire(key, now, verifyForMs) : key));
}

/** The ring with the algorithm's active key as the default; undefined when it already is. */
export function ringWithDefault(keys: readonly StoredKey[], algorithm: SigningAlgorithm): StoredKey[] | undefined {
  const { active, defaultKey } = activeKeys(keys);
  const target = active.find((key) => key.algorithm === algorithm);
  if (target === undefined) {
    throw new FailedPreconditionError(`algorithm: ${algorithm} has no active key; add one with RotateKeys first`);
  }
  if (target === defaultKey && target.default === true) return undefined;
  return keys.map((key): StoredKey => {
    if (key === target) return { ...key, default: true };
    const { default: _wasDefault, ...rest } = key;
    return rest;
  });
}

async function importPublicKey(key: StoredKey): Promise<CryptoKey> {
  try {
    return (await importJWK(key.publicJwk as JWK, key.algorithm)) as CryptoKey;
  } catch (cause) {
    throw new KeyRingError(`the key ring holds a public key that cannot be used: kid ${key.kid} (${key.algorithm})`, { cause });
  }
}

async function openSigningKey(key: StoredKey, keyEncryptionKey: Uint8Array): Promise<CryptoKey> {
  let privateJwk: JWK;
  try {
    privateJwk = JSON.parse(openPrivateKey(key.sealedPrivateKey, key.kid, keyEncryptionKey)) as JWK;
  } catch (cause) {
    throw new KeyRingError('an active signing key cannot be opened: was it sealed under another master key?', { cause });
  }
  try {
    return (await importJWK(privateJwk, key.algorithm)) as CryptoKey;
  } catch (cause) {
    throw new KeyRingError(`the key ring holds a private key that cannot be used: kid ${key.kid} (${key.algorithm})`, { cause });
  }
}

/** Throws KeyRingError, naming what is wrong, for a ring that cannot be used as a whole. */
export async function loadKeyRing(snapshot: KeyRingSnapshot, keyEncryptionKey: Uint8Array): Promise<KeyRing> {
  const { active, defaultKey } = activeKeys(snapshot.keys);
  if (active.length === 0) throw new KeyRingError('the key ring has no active key');
  const algorithms = new Set(active.map((key) => key.algorithm));
  if (algorithms.size !== active.length) throw new KeyRingError('the key ring has two active keys of one algorithm');
  if (defaultKey === undefined) throw new KeyRingError('the key ring must have exactly one default key among its active keys');
  const verifying = new Map<string, VerificationKey>();
  for (const key of snapshot.keys) {
    verifying.set(key.kid, { kid: key.kid, algorithm: key.algorithm, publicKey: await importPublicKey(key) });
  }
  const signing = new Map<SigningAlgorithm, SigningKey>();
  for (const key of active) {
    signing.set(key.algorithm, { ...verifying.get(key.kid)!, privateKey: await openSigningKey(key, keyEncryptionKey) });
  }
  return { version: snapshot.version, signing, defaultAlgorithm: defaultKey.algorithm, verifying, stored: snapshot.keys };
}

export function publicKeyInfo(key: StoredKey, defaultKey: StoredKey | undefined): PublicKeyInfo {
  const info: PublicKeyInfo = {
    kid: key.kid,
    algorithm: key.algorithm,
    state: key.state,
    default: key === defaultKey,
    createdAt: key.createdAt,
    publicJwk: key.publicJwk,
  };
  if (key.retiresAt !== undefined) info.retiresAt = key.retiresAt;
  return info;
}
