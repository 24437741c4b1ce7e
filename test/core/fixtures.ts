import { randomBytes } from 'node:crypto';
import type { Store } from '../../src/core/ports.js';
import { deriveSecrets, type DerivedSecrets } from '../../src/core/secrets.js';
import { createTokenService, type TokenService, type TokenServiceOptions } from '../../src/core/token-service.js';
import { createFakeClock, type FakeClock } from '../support/fake-clock.js';
import { createMemoryStore } from '../../src/store/memory/memory-store.js';

export const HOUR = 3_600_000;

export interface Replica {
  service: TokenService;
  clock: FakeClock;
  store: Store;
  secrets: DerivedSecrets;
}

/** A started token service with defaults a test can override; a shared store makes replicas. */
export async function startReplica(overrides: Partial<TokenServiceOptions> & { clock?: FakeClock } = {}): Promise<Replica> {
  const clock = overrides.clock ?? createFakeClock();
  const store = overrides.store ?? createMemoryStore({ clock });
  const secrets = overrides.secrets ?? deriveSecrets(new Uint8Array(randomBytes(32)));
  const service = createTokenService({
    issuer: 'https://tally.test',
    defaultTtlMs: HOUR,
    maxTtlMs: 24 * HOUR,
    clockSkewMs: 60_000,
    keyAlgorithm: 'EdDSA',
    keyRefreshMs: 60_000,
    ...overrides,
    store,
    secrets,
    clock,
  });
  await service.start();
  return { service, clock, store, secrets };
}
