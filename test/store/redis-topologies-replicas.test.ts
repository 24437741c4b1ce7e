// The cross-replica revocation guarantee on the two Redis topologies past a
// single server: three token services, each with its own store and local
// view, on a Redis Cluster (primaries with replicas) and behind Sentinel.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.js';
import { deriveSecrets } from '../../src/core/secrets.js';
import { createTokenService, type TokenService } from '../../src/core/token-service.js';
import { createRedisStore, type RedisStore } from '../../src/store/redis/redis-store.js';
import { eventually } from '../support/eventually.js';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster.js';
import { startRedisSentinel, type RedisSentinelHandle } from '../support/redis-sentinel.js';

interface Replica {
  store: RedisStore;
  service: TokenService;
}

async function startReplicas(url: string, replicasToWait: number): Promise<Replica[]> {
  const keyPrefix = `tally-test:${randomUUID()}:`;
  const secrets = deriveSecrets(new Uint8Array(randomBytes(32)));
  const replicas: Replica[] = [];
  for (let i = 0; i < 3; i++) {
    const store = createRedisStore({ url, keyPrefix, cacheSize: 1000, leaseMs: 500, replicasToWait });
    const service = createTokenService({
      store, secrets, issuer: 'https://tally.test', defaultTtlMs: 3_600_000, maxTtlMs: 7_200_000, clockSkewMs: 1_000,
      keyAlgorithm: 'EdDSA', keyRefreshMs: 60_000,
    });
    await eventually(() => service.start(), 10_000);
    replicas.push({ store, service });
  }
  await eventually(async () => expect(replicas.every(({ store }) => store.localViewFresh())).toBe(true), 10_000);
  return replicas;
}

async function stopReplicas(replicas: Replica[]): Promise<void> {
  for (const { service, store } of replicas) {
    await service.stop();
    await store.close();
  }
}

/** Issue on one replica, cache on another, revoke on the third, then ask the second again. */
async function activeAfterRevoke(replicas: Replica[], trials: number): Promise<number> {
  let active = 0;
  for (let trial = 0; trial < trials; trial++) {
    const [issuer, checker, revoker] = [replicas[trial % 3]!, replicas[(trial + 1) % 3]!, replicas[(trial + 2) % 3]!];
    const { token, tokenId } = await issuer.service.issue({ subject: `user-${trial}` });
    expect((await checker.service.introspect({ token })).active).toBe(true);
    await revoker.service.revoke(trial % 2 === 0 ? { kind: 'tokenId', tokenId } : { kind: 'subject', value: `user-${trial}` });
    if ((await checker.service.introspect({ token })).active) active++;
  }
  return active;
}

describe('on a Redis Cluster (three primaries, a replica each)', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => {
    cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 1 });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('200 revoke-then-introspect trials across three leased replicas: never active after Revoke returns', async () => {
    const replicas = await startReplicas(cluster.url, 1);
    try {
      expect(await activeAfterRevoke(replicas, 200)).toBe(0);
    } finally {
      await stopReplicas(replicas);
    }
  });

  it('waits for the replica of the primary owning the revocation slot, and refuses when too few replicas exist', async () => {
    const store = createRedisStore({ url: cluster.url, keyPrefix: `tally-test:${randomUUID()}:`, replicasToWait: 2 });
    try {
      await eventually(() => store.ping(), 5_000);
      await expect(store.revokeScope('subject', 'alice', 60_000)).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await store.close();
    }
  });
});

describe('behind Sentinel', () => {
  let deployment: RedisSentinelHandle;
  beforeAll(async () => {
    deployment = await startRedisSentinel({ sentinels: 1 });
  });
  afterAll(async () => {
    await deployment?.stop();
  });

  it('200 revoke-then-introspect trials across three leased replicas: never active after Revoke returns', async () => {
    const replicas = await startReplicas(deployment.url, 1);
    try {
      expect(await activeAfterRevoke(replicas, 200)).toBe(0);
    } finally {
      await stopReplicas(replicas);
    }
  });
});
