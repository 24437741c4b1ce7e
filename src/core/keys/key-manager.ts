// Keeps this replica's copy of the key ring current and makes changes to the
// shared one. Every change is a compare-and-set on the ring's version, so two
// replicas rotating at once make one new key, not two.
import { KeyRingError } from '../errors.js';
import type { Clock, Randomness, Store } from '../ports.js';
import type { KeyRingSnapshot, PublicKeyInfo, SigningAlgorithm, StoredKey } from '../types.js';
import {
  generateStoredKey,
  isRetired,
  loadKeyRing,
  publicKeyInfo,
  ringAfterRotation,
  type KeyRing,
  type SigningKey,
  type VerificationKey,
} from './key-ring.js';

export interface KeyManagerOptions {
  store: Store;
  clock: Clock;
  randomness: Randomness;
  keyEncryptionKey: Uint8Array;
  defaultAlgorithm: SigningAlgorithm;
  /** How long a key verifies after it stops signing: the longest token lifetime plus clock skew. */
  verifyForMs: number;
  /** Shortest pause between two reloads caused by tokens naming an unknown kid. */
  unknownKidReloadMs: number;
  /** When set, the active key is replaced once it is this old (by whichever replica sees it first). */
  rotationIntervalMs?: number;
}

const MAX_WRITE_ATTEMPTS = 8;

export interface KeyManager {
  /** Loads the ring, making the first key when there is none. */
  load(): Promise<void>;
  /** Reloads the ring when another replica changed it, drops keys past retirement, and rotates when due. */
  refresh(): Promise<void>;
  loaded(): boolean;
  signingKey(): SigningKey;
  /** The key for a kid; reloads the ring (rate-limited) when the kid is unknown, as after a rotation elsewhere. */
  verificationKey(kid: string): Promise<VerificationKey | undefined>;
  rotate(algorithm?: SigningAlgorithm): Promise<PublicKeyInfo[]>;
  list(): PublicKeyInfo[];
}

export function createKeyManager(options: KeyManagerOptions): KeyManager {
  const { store, clock } = options;
  let ring: KeyRing | undefined;
  /** The store identity the ring was read under (see KeyRingSnapshot.storeIdentity). */
  let ringStoreIdentity: string | undefined;
  let lastUnknownKidReload = -Infinity;
  let reloading: Promise<void> | undefined;

  async function apply({ version, keys, storeIdentity }: KeyRingSnapshot): Promise<void> {
    if (ring !== undefined && ring.version === version && ringStoreIdentity === storeIdentity) return;
    ring = await loadKeyRing({ version, keys }, options.keyEncryptionKey);
    ringStoreIdentity = storeIdentity;
  }

  /** A first key, when the ring is empty: a new store, or one that lost its data and was set up again. */
  async function setUpRing(): Promise<void> {
    await change(async (keys, now) =>
      keys.length > 0 ? undefined : [await generateStoredKey(options.defaultAlgorithm, now, options.keyEncryptionKey, options.randomness)],
    );
  }

  /** Applies change to the latest ring until the compare-and-set goes through. */
  async function change(next: (keys: readonly StoredKey[], now: number) => Promise<StoredKey[] | undefined>): Promise<void> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const snapshot = await store.readKeyRing();
      const keys = await next(snapshot.keys, clock.now());
      if (keys === undefined) {
        await apply(snapshot);
        return;
      }
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
        if (snapshot.keys.length === 0) {
          // The store lost its ring: never keep signing with a key it no longer has.
          await setUpRing();
        } else if (snapshot.keys.some((key) => isRetired(key, clock.now()))) {
          // Drop retired keys: whichever replica sees them first does it.
          await change(async (keys, now) => {
            const kept = keys.filter((key) => !isRetired(key, now));
            return kept.length === keys.length ? undefined : kept;
          });
        } else {
          await apply(snapshot);
        }
      } finally {
        reloading = undefined;
      }
    })();
    return reloading;
  }

  /** A new active key with the current algorithm, unless the active one is younger than the interval. */
  async function rotateIfDue(): Promise<void> {
    const interval = options.rotationIntervalMs;
    if (interval === undefined) return;
    const active = ring?.stored.find((key) => key.state === 'active');
    if (active === undefined || clock.now() - active.createdAt < interval) return;
    // Checked again on the snapshot the write depends on: of several replicas
    // that find the key due at once, the first write makes it young for the rest.
    await change(async (keys, now) => {
      const current = keys.find((key) => key.state === 'active');
      if (current !== undefined && now - current.createdAt < interval) return undefined;
      const fresh = await generateStoredKey(current?.algorithm ?? options.defaultAlgorithm, now, options.keyEncryptionKey, options.randomness);
      return ringAfterRotation(keys, fresh, now, options.verifyForMs);
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

    signingKey() {
      if (ring === undefined) throw new KeyRingError('the key ring is not loaded yet');
      return ring.signing;
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
        const current = keys.find((key) => key.state === 'active');
        const chosen = algorithm ?? current?.algorithm ?? options.defaultAlgorithm;
        const fresh = await generateStoredKey(chosen, now, options.keyEncryptionKey, options.randomness);
        return ringAfterRotation(keys, fresh, now, options.verifyForMs);
      });
      return manager.list();
    },

    list() {
      const now = clock.now();
      return (ring?.stored ?? []).filter((key) => !isRetired(key, now)).map(publicKeyInfo);
    },
  };
  return manager;
}
