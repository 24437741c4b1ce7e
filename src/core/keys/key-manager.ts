// Keeps this replica's copy of the key ring current and makes changes to the
// shared one. Every change is a compare-and-set on the ring's version, so two
// replicas rotating at once make one new key, not two.
import { FailedPreconditionError, KeyRingError } from '../errors.js';
import type { Clock, Randomness, Store } from '../ports.js';
import type { KeyRingSnapshot, PublicKeyInfo, SigningAlgorithm, StoredKey } from '../types.js';
import {
  activeKeys,
  generateStoredKey,
  isRetired,
  loadKeyRing,
  publicKeyInfo,
  ringAfterRetiring,
  ringAfterRotation,
  ringWithDefault,
  type KeyRing,
  type SigningKey,
  type VerificationKey,
} from './key-ring.js';
import { authenticRingEntries, withRingMac } from './ring-mac.js';

export interface KeyManagerOptions {
  store: Store;
  clock: Clock;
  randomness: Randomness;
  keyEncryptionKey: Uint8Array;
  /** Authenticates ring entries (ring-mac.ts): entries without a good MAC are ignored. */
  integrityKey: Uint8Array;
  /** Told of each ring entry that failed its MAC, once per ring version. */
  onTamperedEntry?: (kid: string) => void;
  defaultAlgorithm: SigningAlgorithm;
  /** How long a key verifies after it stops signing: the longest token lifetime plus clock skew. */
  verifyForMs: number;
  /** Shortest pause between two reloads caused by tokens naming an unknown kid. */
  unknownKidReloadMs: number;
  /** When set, each active key is replaced once it is this old (by whichever replica sees it first). */
  rotationIntervalMs?: number;
}

const MAX_WRITE_ATTEMPTS = 8;

export interface KeyManager {
  /** Loads the ring, making the first key when there is none. */
  load(): Promise<void>;
  /** Reloads the ring when another replica changed it, drops keys past retirement, and rotates when due. */
  refresh(): Promise<void>;
  loaded(): boolean;
  /** The active key of the algorithm (the default one when undefined); FailedPreconditionError when it has none. */
  signingKey(algorithm?: SigningAlgorithm): SigningKey;
  /** As signingKey, but first reloads the ring (rate-limited) when the algorithm has no key here, as after it was added elsewhere. */
  currentSigningKey(algorithm?: SigningAlgorithm): Promise<SigningKey>;
  /** The key for a kid; reloads the ring (rate-limited) when the kid is unknown, as after a rotation elsewhere. */
  verificationKey(kid: string): Promise<VerificationKey | undefined>;
  /** A new active key for the algorithm (the default one when undefined), replacing its current one or joining the ring beside the others. */
  rotate(algorithm?: SigningAlgorithm): Promise<PublicKeyInfo[]>;
  /** Takes a key out of the ring at once; an active key is replaced by a new one of its algorithm. */
  remove(kid: string): Promise<PublicKeyInfo[]>;
  /** Whether the latest ring (read from the store) holds kid. */
  holds(kid: string): Promise<boolean>;
  /** The algorithm's active key stops signing; it verifies until its tokens have expired. Never the default. */
  retire(algorithm: SigningAlgorithm): Promise<PublicKeyInfo[]>;
  /** The algorithm's active key signs when Issue names no algorithm. */
  makeDefault(algorithm: SigningAlgorithm): Promise<PublicKeyInfo[]>;
  list(): PublicKeyInfo[];
}

export function createKeyManager(options: KeyManagerOptions): KeyManager {
  const { store, clock } = options;
  let ring: KeyRing | undefined;
  /** The store identity the ring was read under (see KeyRingSnapshot.storeIdentity). */
  let ringStoreIdentity: string | undefined;
  let lastUnknownKidReload = -Infinity;
  let lastUnknownAlgorithmReload = -Infinity;
  let reloading: Promise<void> | undefined;
  let reportedVersion = -1;

  /** The snapshot's entries that are Tally's own; the others are reported once per ring version. */
  function authentic(snapshot: KeyRingSnapshot): StoredKey[] {
    const report = snapshot.version !== reportedVersion;
    reportedVersion = snapshot.version;
    return authenticRingEntries(snapshot.keys, options.integrityKey, (kid) => {
      if (report) options.onTamperedEntry?.(kid);
    });
  }

  async function apply({ version, keys, storeIdentity }: KeyRingSnapshot): Promise<void> {
    if (ring !== undefined && ring.version === version && ringStoreIdentity === storeIdentity) return;
    ring = await loadKeyRing({ version, keys }, options.keyEncryptionKey);
    ringStoreIdentity = storeIdentity;
  }

  /** A first key, when the ring is empty: a new store, or one that lost its data and was set up again. */
  async function setUpRing(): Promise<void> {
    await change(async (keys, now) =>
      keys.length > 0
        ? undefined
        : [{ ...(await generateStoredKey(options.defaultAlgorithm, now, options.keyEncryptionKey, options.randomness)), default: true }],
    );
  }

  /** Applies change to the latest ring until the compare-and-set goes through. */
  async function change(next: (keys: readonly StoredKey[], now: number) => Promise<StoredKey[] | undefined>): Promise<void> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const snapshot = await store.readKeyRing();
      const current = authentic(snapshot);
      const changed = await next(current, clock.now());
      if (changed === undefined) {
        await apply({ version: snapshot.version, keys: current, storeIdentity: snapshot.storeIdentity });
        return;
      }
      // Loaded before it is written: a ring this replica could not use is never stored.
      await loadKeyRing({ version: snapshot.version + 1, keys: changed }, options.keyEncryptionKey);
      // Every entry written is MACed afresh: its fields may have changed (a key starting to retire).
      const keys = changed.map((key) => withRingMac(key, options.integrityKey));
      if (await store.writeKeyRing(snapshot.version, keys)) {
        await apply({ version: snapshot.version + 1, keys, storeIdentity: snapshot.storeIdentity });
        return;
      }
    }
    throw new KeyRingError('the key ring kept changing under this replica; try again');
  }

  async function reload(): Promise<void> {
    reloading ??= (async () => {
      try {
        const snapshot = await store.readKeyRing();
        const current = authentic(snapshot);
        if (current.length === 0) {
          // The store lost its ring (or holds none Tally wrote): never keep signing with a key it no longer has.
          await setUpRing();
        } else if (current.some((key) => isRetired(key, clock.now()))) {
          // Drop retired keys: whichever replica sees them first does it.
          await change(async (keys, now) => {
            const kept = keys.filter((key) => !isRetired(key, now));
            return kept.length === keys.length ? undefined : kept;
          });
        } else {
          await apply({ version: snapshot.version, keys: current, storeIdentity: snapshot.storeIdentity });
        }
      } finally {
        reloading = undefined;
      }
    })();
    return reloading;
  }

  /** A new key for each active key at least an interval old, all in one write. */
  async function rotateIfDue(): Promise<void> {
    const interval = options.rotationIntervalMs;
    if (interval === undefined) return;
    const due = (keys: readonly StoredKey[], now: number) =>
      activeKeys(keys).active.filter((key) => now - key.createdAt >= interval);
    if (ring === undefined || due(ring.stored, clock.now()).length === 0) return;
    // Checked again on the snapshot the write depends on: of several replicas
    // that find a key due at once, the first write makes it young for the rest.
    await change(async (keys, now) => {
      const stale = due(keys, now);
      if (stale.length === 0) return undefined;
      let next: StoredKey[] = [...keys];
      for (const key of stale) {
        const fresh = await generateStoredKey(key.algorithm, now, options.keyEncryptionKey, options.randomness);
        next = ringAfterRotation(next, fresh, now, options.verifyForMs);
      }
      return next;
    });
  }

  // A store that reports ring changes spares this replica up to a refresh
  // interval of signing with a key another replica has already replaced.
  store.onKeyRingChange?.(() => {
    reload().catch(() => {
      // The periodic refresh tries again; its failures are reported there.
    });
  });

  const manager: KeyManager = {
    async load() {
      await setUpRing();
      await reload();
    },

    async refresh() {
      await reload();
      await rotateIfDue();
    },

    loaded: () => ring !== undefined,

    signingKey(algorithm) {
      if (ring === undefined) throw new KeyRingError('the key ring is not loaded yet');
      const key = ring.signing.get(algorithm ?? ring.defaultAlgorithm);
      if (key === undefined) {
        throw new FailedPreconditionError(`algorithm: ${algorithm} has no active signing key; add one with RotateKeys, or name one of ${[...ring.signing.keys()].join(', ')}`);
      }
      return key;
    },

    async currentSigningKey(algorithm) {
      const known = ring?.signing.get(algorithm ?? ring.defaultAlgorithm);
      if (known !== undefined) return known;
      const now = clock.now();
      if (ring !== undefined && now - lastUnknownAlgorithmReload >= options.unknownKidReloadMs) {
        lastUnknownAlgorithmReload = now;
        await reload();
      }
      return manager.signingKey(algorithm);
    },

    async verificationKey(kid) {
      const known = ring?.verifying.get(kid);
      if (known !== undefined) return known;
      const now = clock.now();
      if (now - lastUnknownKidReload < options.unknownKidReloadMs) return undefined;
      lastUnknownKidReload = now;
      await reload();
      return ring?.verifying.get(kid);
    },

    async rotate(algorithm) {
      await change(async (keys, now) => {
        const chosen = algorithm ?? activeKeys(keys).defaultKey?.algorithm ?? options.defaultAlgorithm;
        const fresh = await generateStoredKey(chosen, now, options.keyEncryptionKey, options.randomness);
        return ringAfterRotation(keys, fresh, now, options.verifyForMs);
      });
      return manager.list();
    },

    async remove(kid) {
      await change(async (keys, now) => {
        const pulled = keys.find((key) => key.kid === kid);
        if (pulled === undefined) return undefined;
        const rest = keys.filter((key) => key.kid !== kid);
        if (pulled.state !== 'active') return rest;
        // The replacement signs in its place, as the default when the pulled key was.
        const replacement = await generateStoredKey(pulled.algorithm, now, options.keyEncryptionKey, options.randomness);
        return [...rest, activeKeys(keys).defaultKey === pulled ? { ...replacement, default: true } : replacement];
      });
      return manager.list();
    },

    async holds(kid) {
      await reload();
      return ring?.stored.some((key) => key.kid === kid) ?? false;
    },

    async retire(algorithm) {
      await change(async (keys, now) => ringAfterRetiring(keys, algorithm, now, options.verifyForMs));
      return manager.list();
    },

    async makeDefault(algorithm) {
      await change(async (keys) => ringWithDefault(keys, algorithm));
      return manager.list();
    },

    list() {
      const now = clock.now();
      const stored = ring?.stored ?? [];
      const { defaultKey } = activeKeys(stored);
      return stored.filter((key) => !isRetired(key, now)).map((key) => publicKeyInfo(key, defaultKey));
    },
  };
  return manager;
}
