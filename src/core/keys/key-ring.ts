// The key ring as the core uses it: the store's snapshot with the keys
// imported for jose. Only the active key's private part is ever opened; the
// others only verify.
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { KeyRingError } from '../errors.js';
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
  signing: SigningKey;
  verifying: ReadonlyMap<string, VerificationKey>;
  stored: readonly StoredKey[];
}

export async function generateStoredKey(
  algorithm: SigningAlgorithm,
  createdAt: number,
  keyEncryptionKey: Uint8Array,
  randomness: Randomness,
): Promise<StoredKey> {
  const pair = await generateKeyPair(algorithm, { extractable: true });
  const publicJwk = await exportJWK(pair.publicKey);
  // The RFC 7638 thumbprint: a kid anyone can recompute from the public key.
  const kid = await calculateJwkThumbprint(publicJwk);
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

/**
 * The ring after making newKey active: the old active key keeps verifying
 * until every token it could have signed has expired, and retired keys leave.
 */
export function ringAfterRotation(keys: readonly StoredKey[], newKey: StoredKey, now: number, verifyForMs: number): StoredKey[] {
  const kept = keys
    .filter((key) => !isRetired(key, now))
    .map((key): StoredKey => (key.state === 'active' ? { ...key, state: 'retiring', retiresAt: now + verifyForMs } : key));
  return [...kept, newKey];
}

export async function loadKeyRing(snapshot: KeyRingSnapshot, keyEncryptionKey: Uint8Array): Promise<KeyRing> {
  const active = snapshot.keys.filter((key) => key.state === 'active');
  if (active.length !== 1) {
    throw new KeyRingError(`the key ring must have exactly one active key, it has ${active.length}`);
  }
  const activeKey = active[0]!;
  let privateJwk: JWK;
  try {
    privateJwk = JSON.parse(openPrivateKey(activeKey.sealedPrivateKey, activeKey.kid, keyEncryptionKey)) as JWK;
  } catch (cause) {
    throw new KeyRingError('the active signing key cannot be opened: was it sealed under another master key?', { cause });
  }
  const verifying = new Map<string, VerificationKey>();
  for (const key of snapshot.keys) {
    const publicKey = (await importJWK(key.publicJwk as JWK, key.algorithm)) as CryptoKey;
    verifying.set(key.kid, { kid: key.kid, algorithm: key.algorithm, publicKey });
  }
  const privateKey = (await importJWK(privateJwk, activeKey.algorithm)) as CryptoKey;
  return {
    version: snapshot.version,
    signing: { ...verifying.get(activeKey.kid)!, privateKey },
    verifying,
    stored: snapshot.keys,
  };
}

export function publicKeyInfo(key: StoredKey): PublicKeyInfo {
  const info: PublicKeyInfo = {
    kid: key.kid,
    algorithm: key.algorithm,
    state: key.state,
    createdAt: key.createdAt,
    publicJwk: key.publicJwk,
  };
  if (key.retiresAt !== undefined) info.retiresAt = key.retiresAt;
  return info;
}
