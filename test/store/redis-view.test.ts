// The Redis store with its fast path on: a local view of the marks under a
// lease, and a token cache. It must keep the whole Store contract, and the
// revocation guarantee across replicas, with answers served from memory.
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.js';
import { deriveSecrets } from '../../src/core/secrets.js';
import { createTokenService, type TokenService } from '../../src/core/token-service.js';
import { createKeyNames } from '../../src/store/redis/keys.js';
import { createRedisStore, type RedisStore } from '../../src/store/redis/redis-store.js';
import { eventually } from '../support/eventually.js';
import { startRedis, testRedisUrl, type RedisServerHandle } from '../support/redis-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { describeStoreConformance } from './conformance.js';
import { redisStoreHarness } from './redis-harness.js';

const LEASE_MS = 400;
// Long enough that a holder acknowledges in time on a machine under load.
const HOLDER_LEASE_MS = 1_000;

describeStoreConformance('redis with a local view', async () => redisStoreHarness(await testRedisUrl(), { cacheSize: 1000, leaseMs: LEASE_MS, holderLeaseMs: HOLDER_LEASE_MS }));

interface Replica {
  store: RedisStore;
  service: TokenService;
}

describe('replicas answering from their local views', () => {
  const opened: Replica[] = [];
  const proxies: TcpProxy[] = [];
  const servers: RedisServerHandle[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map(async ({ store, service }) => {
      await service.stop();
      await store.close();
    }));
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
  });

  async function replicas(
    count: number,
    url: string,
    keyPrefix = `tally-test:${randomUUID()}:`,
    secrets = deriveSecrets(new Uint8Array(randomBytes(32))),
    eventsToKeep?: number,
  ) {
    const started: Replica[] = [];
    for (let i = 0; i < count; i++) {
      const store = createRedisStore({ url, keyPrefix, cacheSize: 1000, leaseMs: LEASE_MS, commandTimeoutMs: 300, eventsToKeep });
      const service = createTokenService({
        store, secrets, issuer: 'https://tally.test', defaultTtlMs: 3_600_000, maxTtlMs: 7_200_000, clockSkewMs: 1_000,
        keyAlgorithm: 'EdDSA', keyRefreshMs: 60_000,
      });
      await service.start();
      opened.push({ store, service });
      started.push({ store, service });
    }
    await eventually(async () => expect(started.every(({ store }) => store.localViewFresh())).toBe(true), 5_000);
    return { replicas: started, keyPrefix, secrets };
  }

  it('a revocation made on one replica is applied by every other before Revoke returns (300 trials)', async () => {
    const { replicas: [first, second, third] } = await replicas(3, await testRedisUrl());
    const all = [first!, second!, third!];
    let activeAfterRevoke = 0;
    for (let trial = 0; trial < 300; trial++) {
      const issuer = all[trial % 3]!;
      const revoker = all[(trial + 1) % 3]!;
      const checker = all[(trial + 2) % 3]!;
      const { token, tokenId } = await issuer.service.issue({ subject: `user-${trial}`, sessionId: `session-${trial}` });
      // Warm the checker's cache, so its answer comes from memory.
      expect((await checker.service.introspect({ token })).active).toBe(true);
      const target = trial % 2 === 0 ? { kind: 'tokenId' as const, tokenId } : { kind: 'session' as const, value: `session-${trial}` };
      await revoker.service.revoke(target);
      if ((await checker.service.introspect({ token })).active) activeAfterRevoke++;
    }
    expect(activeAfterRevoke).toBe(0);
  });

  it('answers a cached token from memory: no command reaches Redis', async () => {
    const redis = await startRedis({ appendonly: false });
    servers.push(redis);
    const { replicas: [replica] } = await replicas(1, redis.url);
    const { token } = await replica!.service.issue({ subject: 'alice' });
    expect((await replica!.service.introspect({ token })).active).toBe(true);
    // MONITOR shows every command with its keys; an introspection that went
    // to Redis would read the token record or the marks. Lease renewals and
    // stream reads run meanwhile and are not counted.
    const observer = new Redis(redis.url);
    const monitor = await observer.monitor();
    const lookups: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args.some((arg) => arg.includes(':tok:') || arg.endsWith('{revocations}:marks'))) lookups.push(args.join(' '));
    });
    try {
      for (let i = 0; i < 1_000; i++) expect((await replica!.service.introspect({ token })).active).toBe(true);
      // A lookup made now would be seen: the monitor is live.
      await replica!.store.getToken('not-cached');
      await eventually(async () => expect(lookups).toHaveLength(1), 2_000);
      expect(lookups[0]).toContain('not-cached');
    } finally {
      monitor.disconnect();
      observer.disconnect();
    }
  });

  it('leaves no lease behind of holders outside Tally that came and went, with nothing revoked', async () => {
    const keyPrefix = `tally-test:${randomUUID()}:`;
    const store = createRedisStore({ url: await testRedisUrl(), keyPrefix, cacheSize: 1000, leaseMs: LEASE_MS, holderLeaseMs: 150 });
    try {
      await eventually(async () => expect(store.localViewFresh()).toBe(true), 5_000);
      for (let i = 0; i < 20; i++) await store.holders!.grant(`gone-${i}`, 0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await store.holders!.grant('new', 0);
      const leases = new Redis(await testRedisUrl());
      try {
        // This replica's own lease, and the new holder's.
        const fields = await leases.hkeys(createKeyNames(keyPrefix).leases);
        expect(fields).toContain('holder:new');
        expect(fields).toHaveLength(2);
      } finally {
        leases.disconnect();
      }
    } finally {
      await store.close();
    }
  });

  it('a replica cut off from Redis stops answering from its view once its lease lapses; Revoke elsewhere waits at most about one lease', async () => {
    const redis = await startRedis({ appendonly: false });
    servers.push(redis);
    const proxy = await startTcpProxy(redis.port);
    proxies.push(proxy);
    const keyPrefix = `tally-test:${randomUUID()}:`;
    const { replicas: [healthy], secrets } = await replicas(1, redis.url, keyPrefix);
    const { replicas: [isolated] } = await replicas(1, `redis://127.0.0.1:${proxy.port}`, keyPrefix, secrets);
    const { token } = await healthy!.service.issue({ subject: 'alice' });
    expect((await isolated!.service.introspect({ token })).active).toBe(true);

    proxy.pause();
    const started = performance.now();
    await healthy!.service.revoke({ kind: 'subject', value: 'alice' });
    const revokeMs = performance.now() - started;
    expect(revokeMs).toBeLessThan(LEASE_MS + 500);
    // The revocation returned, so the isolated replica must not say active:
    // its view is stale and Redis does not answer it.
    expect(isolated!.store.localViewFresh()).toBe(false);
    await expect(isolated!.service.introspect({ token })).rejects.toBeInstanceOf(StoreUnavailableError);

    proxy.resume();
    await eventually(async () => expect(isolated!.store.localViewFresh()).toBe(true), 5_000);
    expect((await isolated!.service.introspect({ token })).active).toBe(false);
  });

  it('a replica whose place in the event stream was trimmed away reloads in full and misses nothing', async () => {
    const redis = await startRedis({ appendonly: false });
    servers.push(redis);
    const proxy = await startTcpProxy(redis.port);
    proxies.push(proxy);
    const keyPrefix = `tally-test:${randomUUID()}:`;
    const {
      replicas: [healthy],
      secrets,
    } = await replicas(1, redis.url, keyPrefix, undefined, 10);
    const {
      replicas: [behind],
    } = await replicas(1, `redis://127.0.0.1:${proxy.port}`, keyPrefix, secrets, 10);
    // Issued 20 at a time: 300 at once would put 300 Issues inside this store's 300 ms
    // command timeout, which a loaded machine can miss; the trimmed stream is what is tested.
    const tokens: Array<{ token: string }> = [];
    for (let batch = 0; batch < 300; batch += 20) {
      tokens.push(...(await Promise.all(Array.from({ length: 20 }, (_, i) => healthy!.service.issue({ subject: `user-${batch + i}` })))));
    }
    const observer = new Redis(redis.url);
    proxy.cut();
    const cutAt = Number(await observer.get(`${keyPrefix}{revocations}:sequence`));
    // Far more revocations than the stream keeps (approximate trimming keeps a few hundred at most).
    for (let i = 0; i < 300; i++) await healthy!.service.revoke({ kind: 'subject', value: `user-${i}` });
    const firstKept = await observer.xrange(`${keyPrefix}{revocations}:events`, '-', '+', 'COUNT', 1);
    observer.disconnect();
    // Events the cut-off replica had not read were trimmed away: the first kept one follows a later one.
    const fields = firstKept[0]![1];
    expect(Number(fields[fields.indexOf('previous') + 1])).toBeGreaterThan(cutAt);
    proxy.resume();
    await eventually(async () => expect(behind!.store.localViewFresh()).toBe(true), 5_000);
    for (const { token } of tokens) expect((await behind!.service.introspect({ token })).active).toBe(false);
  });
});
