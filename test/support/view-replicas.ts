// Tally replicas in this process, each a token service on its own Redis store
// with the local view on: for tests of what replicas that stay up do when
// Redis comes back with less than it had. The scenario is one function, so
// every topology is held to the same promise.
import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { deriveSecrets, type DerivedSecrets } from '../../src/core/secrets.js';
import { createTokenService, type TokenService } from '../../src/core/token-service.js';
import type { StoreChange } from '../../src/store/redis/replica-view.js';
import { createRedisStore, type RedisStore } from '../../src/store/redis/redis-store.js';
import { eventually } from './eventually.js';

export interface ViewReplica {
  store: RedisStore;
  service: TokenService;
  /** What the replica's view reported (onStoreChange), in order. */
  changes: StoreChange[];
}

export interface ViewReplicaGroup {
  readonly url: string;
  readonly keyPrefix: string;
  /** Starts one more replica, waiting until its view is fresh. */
  start(): Promise<ViewReplica>;
  closeAll(): Promise<void>;
}

/** Replicas of one deployment: one key prefix, one master secret. */
export function viewReplicaGroup(url: string, options: { leaseMs: number; commandTimeoutMs?: number }): ViewReplicaGroup {
  const keyPrefix = `tally-test:${randomUUID()}:`;
  const secrets: DerivedSecrets = deriveSecrets(new Uint8Array(randomBytes(32)));
  const opened: ViewReplica[] = [];
  return {
    url,
    keyPrefix,
    async start() {
      const changes: StoreChange[] = [];
      const store = createRedisStore({
        url, keyPrefix, cacheSize: 1000, leaseMs: options.leaseMs, commandTimeoutMs: options.commandTimeoutMs ?? 1000,
        onStoreChange: (change) => changes.push(change),
      });
      const service = createTokenService({
        store, secrets, issuer: 'https://tally.test', defaultTtlMs: 3_600_000, maxTtlMs: 7_200_000, clockSkewMs: 1_000,
        keyAlgorithm: 'EdDSA', keyRefreshMs: 60_000,
      });
      const replica = { store, service, changes };
      opened.push(replica);
      await eventually(() => service.start(), 10_000);
      await eventually(async () => expect(store.localViewFresh()).toBe(true), 10_000);
      return replica;
    },
    async closeAll() {
      await Promise.all(opened.splice(0).map(async ({ store, service }) => {
        await service.stop();
        await store.close();
      }));
    },
  };
}

export interface LossScenario {
  group: ViewReplicaGroup;
  /** Makes Redis come back with less than it had. */
  lose(): Promise<void>;
  /** What the live replicas must report once they noticed. */
  expectedChange: StoreChange;
  /**
   * What a fresh replica answers after the loss for the tokens made well
   * before it: [opaque, JWT, opaque of a subject revoked before], active or not.
   */
  activeFromBefore: [boolean, boolean, boolean];
  /** Whether the signing keys from before the loss are still in the ring. */
  keysKept: boolean;
  /** Writes made just before the loss that the loss takes away (tokens issued, a subject revoked). */
  beforeLoss?(live: readonly ViewReplica[]): Promise<string[]>;
}

/**
 * Two live replicas with warm caches; Redis loses data; at once, 40 trials of
 * issue → every cache → revoke: no replica may answer active after Revoke
 * returned. Then each live replica must have noticed once, and answer every
 * token exactly as a replica started afresh does.
 */
export async function expectExactThroughLoss(scenario: LossScenario): Promise<{ activeAfterRevoke: number }> {
  const { group } = scenario;
  const live = [await group.start(), await group.start()];
  const [first, second] = live as [ViewReplica, ViewReplica];

  const tokens: string[] = [];
  for (const format of ['opaque', 'jwt'] as const) tokens.push((await first.service.issue({ subject: `before-${format}`, format })).token);
  tokens.push((await first.service.issue({ subject: 'revoked-before' })).token);
  await second.service.revoke({ kind: 'subject', value: 'revoked-before' });
  const kept = tokens.length;
  tokens.push(...((await scenario.beforeLoss?.(live)) ?? []));
  for (const { service } of live) for (const token of tokens) await service.introspect({ token });
  const kidsBefore = (await first.service.listKeys()).map((key) => key.kid);

  await scenario.lose();

  let activeAfterRevoke = 0;
  for (let trial = 0; trial < 40; trial++) {
    const issuer = live[trial % 2]!;
    const revoker = live[(trial + 1) % 2]!;
    const subject = `after-${trial}`;
    const { token } = await eventually(() => issuer.service.issue({ subject, format: trial % 4 < 2 ? 'opaque' : 'jwt' }), 15_000);
    tokens.push(token);
    for (const { service } of live) await Promise.resolve(service.introspect({ token })).catch(() => undefined);
    await eventually(() => revoker.service.revoke({ kind: 'subject', value: subject }), 15_000);
    for (const { service } of live) if ((await service.introspect({ token })).active) activeAfterRevoke++;
  }
  expect(activeAfterRevoke).toBe(0);

  for (const replica of live) {
    await eventually(async () => expect(replica.store.localViewFresh()).toBe(true), 10_000);
    expect(replica.changes).toEqual([scenario.expectedChange]);
  }
  const issuedAfter = await first.service.issue({ subject: 'after-recovery', format: 'jwt' });
  tokens.push(issuedAfter.token, (await second.service.issue({ subject: 'after-recovery-opaque' })).token);

  // A replica started now is the reference: every answer matches it.
  const fresh = await group.start();
  for (const token of tokens) {
    const expected = await fresh.service.introspect({ token });
    for (const { service } of live) expect(await service.introspect({ token })).toEqual(expected);
  }
  const beforeActive = await Promise.all(tokens.slice(0, kept).map(async (token) => (await fresh.service.introspect({ token })).active));
  expect(beforeActive).toEqual(scenario.activeFromBefore);
  expect((await fresh.service.introspect({ token: issuedAfter.token })).active).toBe(true);

  // Set up again under the same master key: a replica with another one is still refused.
  const stranger = createRedisStore({ url: group.url, keyPrefix: group.keyPrefix });
  try {
    await eventually(async () => expect(await stranger.checkSecretFingerprint('another master key')).toBe(false), 5_000);
  } finally {
    await stranger.close();
  }

  // No live replica signs with, or shows, a key the store no longer has.
  const kidsAfter = (await fresh.service.listKeys()).map((key) => key.kid);
  expect(kidsAfter.some((kid) => kidsBefore.includes(kid))).toBe(scenario.keysKept);
  for (const { service } of live) expect((await service.listKeys()).map((key) => key.kid)).toEqual(kidsAfter);
  return { activeAfterRevoke };
}
