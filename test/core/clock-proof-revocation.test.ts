// "Whatever the replicas' clocks say": two replicas on one real Redis whose
// clocks disagree by minutes, in both directions. Every time a token or a
// mark carries is on the store's clock, so a revocation made on one replica
// holds on the other for the token's whole life, and a token dies at the same
// instant everywhere. Elapsed time is judged by Redis's own TIME.
import { describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Clock, Store } from '../../src/core/ports.js';
import { deriveSecrets, type DerivedSecrets } from '../../src/core/secrets.js';
import { createTokenService, type TokenService, type TokenServiceOptions } from '../../src/core/token-service.js';
import type { TokenFormat } from '../../src/core/types.js';
import { createRedisStore } from '../../src/store/redis/redis-store.js';
import { eventually } from '../support/eventually.js';
import { cleanedUpAfterAll } from '../support/cleaned-up.js';
import { testRedisUrl } from '../support/redis-server.js';

const MINUTE = 60_000;
const { stores, services, clients } = cleanedUpAfterAll<Store>();

interface Pair {
  fast: TokenService;
  slow: TokenService;
  redisNow(): Promise<number>;
}

/** Two replicas sharing one Redis: one clock `apartMs / 2` ahead of the machine's, the other as far behind. */
async function replicasApart(apartMs: number, overrides: Partial<TokenServiceOptions> = {}, cacheSize = 0): Promise<Pair> {
  const url = await testRedisUrl();
  const keyPrefix = `clock-${randomUUID()}:`;
  const secrets: DerivedSecrets = deriveSecrets(new Uint8Array(randomBytes(32)));
  const start = async (offsetMs: number) => {
    const clock: Clock = { now: () => Date.now() + offsetMs };
    const store = createRedisStore({ url, keyPrefix, clock, cacheSize });
    const service = createTokenService({
      store, clock, secrets,
      issuer: 'https://tally.test', defaultTtlMs: 2 * MINUTE, maxTtlMs: 10 * MINUTE, clockSkewMs: 1_000,
      keyAlgorithm: 'EdDSA', keyRefreshMs: 60_000,
      ...overrides,
    });
    stores.push(store);
    services.push(service);
    await service.start();
    return service;
  };
  const fast = await start(apartMs / 2);
  const slow = await start(-apartMs / 2);
  const client = new Redis(url);
  clients.push(client);
  const redisNow = async () => {
    const [seconds, microseconds] = await client.time();
    return Number(seconds) * 1000 + Math.floor(Number(microseconds) / 1000);
  };
  return { fast, slow, redisNow };
}

describe.each<TokenFormat>(['opaque', 'jwt'])('a %s token on replicas whose clocks are minutes apart', (format) => {
  it.each([
    ['revoked on the fast replica, introspected on the slow one', 'fast', 'slow'],
    ['revoked on the slow replica, introspected on the fast one', 'slow', 'fast'],
  ] as const)('stays revoked when %s', async (_name, revoker, introspector) => {
    const pair = await replicasApart(6 * MINUTE);
    for (const issuer of ['fast', 'slow'] as const) {
      // A lifetime shorter than the clocks' disagreement: judged by the fast
      // replica's own clock it would have ended before it was revoked.
      const issued = await pair[issuer].issue({ subject: `alice-${issuer}`, format, ttlMs: 2 * MINUTE });
      expect((await pair[introspector].introspect({ token: issued.token })).active).toBe(true);
      await pair[revoker].revoke({ kind: 'token', token: issued.token });
      expect(await pair[introspector].introspect({ token: issued.token }), `issued on the ${issuer} replica`).toMatchObject({ active: false, reason: 'revoked' });
      expect(await pair[revoker].introspect({ token: issued.token })).toMatchObject({ active: false, reason: 'revoked' });
    }
  });

  it('is stamped and judged on the store\'s clock by both replicas', async () => {
    const pair = await replicasApart(10 * MINUTE);
    const before = await pair.redisNow();
    const fromFast = await pair.fast.issue({ subject: 'alice', format, ttlMs: MINUTE });
    const fromSlow = await pair.slow.issue({ subject: 'alice', format, ttlMs: MINUTE });
    const after = await pair.redisNow();
    for (const issued of [fromFast, fromSlow]) {
      expect(issued.issuedAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1_000);
      expect(issued.issuedAt).toBeLessThanOrEqual(after + 1_000);
      expect(issued.expiresAt - issued.issuedAt).toBe(MINUTE);
    }
  });
});

describe('a subject revocation on replicas whose clocks are minutes apart', () => {
  it.each([
    ['the fast replica issues, the slow one answers from its cache', 'fast', 'slow'],
    ['the slow replica issues, the fast one answers from its cache', 'slow', 'fast'],
  ] as const)('covers the token for its whole life when %s', async (_name, issuer, introspector) => {
    // Short lives, so the mark's keep time passes within the test, on Redis's clock.
    const maxTtlMs = 2_000;
    const clockSkewMs = 500;
    const pair = await replicasApart(10 * MINUTE, { maxTtlMs, defaultTtlMs: maxTtlMs, clockSkewMs }, 1000);
    const issued = await pair[issuer].issue({ subject: 'alice', format: 'opaque', ttlMs: maxTtlMs });
    // The answering replica caches the record, as a busy replica would.
    expect((await pair[introspector].introspect({ token: issued.token })).active).toBe(true);
    await pair[issuer].revoke({ kind: 'subject', value: 'alice' });
    const revokedAt = await pair.redisNow();
    expect((await pair[introspector].introspect({ token: issued.token })).active).toBe(false);
    // Past the mark's keep time by Redis's clock: the mark may be gone, and the token must be too.
    await eventually(async () => {
      if ((await pair.redisNow()) <= revokedAt + maxTtlMs + clockSkewMs + 100) throw new Error('the mark is still kept');
    }, 10_000);
    expect((await pair[introspector].introspect({ token: issued.token })).active).toBe(false);
    expect((await pair[issuer].introspect({ token: issued.token })).active).toBe(false);
  });
});
