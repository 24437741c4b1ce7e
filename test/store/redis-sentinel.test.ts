// The Redis store behind real Sentinels (a primary, one replica, three
// Sentinels): the shared conformance suite, then a forced failover under a
// store that stays open throughout, as a running Tally would.

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/core/ports.js';
import { createRedisStore } from '../../src/store/redis/redis-store.js';
import { eventually, timed } from '../support/eventually.js';
import { storedKey, tokenRecord } from '../support/store-records.js';
import { startRedisSentinel, type RedisSentinelHandle } from '../support/redis-sentinel.js';
import { describeStoreConformance } from './conformance.js';
import { redisStoreHarness } from './redis-harness.js';

const HOUR_MS = 60 * 60 * 1000;
/** How long the store may take to find the new primary once Sentinel names it. */
const RECOVERY_WITHIN_MS = 10_000;

let deployment: RedisSentinelHandle;

beforeAll(async () => {
  deployment = await startRedisSentinel({ sentinels: 3 });
});

afterAll(async () => {
  await deployment?.stop();
});

// Holders follow a replica's view, which redis-topologies-replicas.test.ts runs under Sentinel.
describeStoreConformance('redis sentinel', () => redisStoreHarness(deployment.url), { withoutHolders: 'the cache is off here' });

describe('redis sentinel failover', () => {
  let store: Store | undefined;

  afterAll(async () => {
    await store?.close();
  });

  it('serves from the new primary through the same store object, with everything the replica had before', async () => {
    const opened = createRedisStore({ url: deployment.url, keyPrefix: `tally-test:${randomUUID()}:` });
    store = opened;
    const token = tokenRecord({ tokenId: 'before-failover' });
    const ringKey = storedKey('before-failover');
    await opened.putToken(token);
    const revoked = await opened.revokeScope('subject', 'alice', HOUR_MS);
    expect(await opened.writeKeyRing(0, [ringKey])).toBe(true);
    const { storeIdentity } = await opened.readKeyRing();
    expect(storeIdentity).toBeDefined();

    // Replication is asynchronous: only what the replica acknowledged is
    // promised to survive, so the test first makes sure it has everything.
    const formerPrimary = deployment.primary;
    const direct = new Redis({ host: '127.0.0.1', port: formerPrimary.port, maxRetriesPerRequest: 0 });
    direct.on('error', () => {});
    try {
      expect(await direct.call('WAIT', '1', '1000')).toBe(1);
    } finally {
      direct.disconnect();
    }

    await deployment.failover();
    expect(deployment.primary.port).not.toBe(formerPrimary.port);

    // The first calls may fail while the store reconnects; it must come back
    // by itself, without being reopened, within a bounded time.
    const later = { ...token, tokenId: 'after-failover' };
    const { elapsedMs, result } = await timed(() => eventually(() => opened.putToken(later), RECOVERY_WITHIN_MS));
    const failure = result.status === 'rejected' ? String(result.reason) : 'none';
    expect(result.status, `store after failover (${Math.round(elapsedMs)} ms, last error: ${failure})`).toBe('fulfilled');

    expect(await opened.getToken(token.tokenId)).toEqual(token);
    expect(await opened.getToken(later.tokenId)).toEqual(later);
    expect(await opened.revocationMark([['subject', 'alice']])).toBe(revoked);
    // The same store, not one set up again: nothing was lost, so replicas keep their views.
    expect(await opened.readKeyRing()).toEqual({ version: 1, keys: [ringKey], storeIdentity });
    const afterwards = await opened.revokeScope('subject', 'bob', HOUR_MS);
    expect(afterwards).toBeGreaterThan(revoked);
    expect(await opened.revocationSequence()).toBeGreaterThanOrEqual(afterwards);

    // The writes above can only have gone to the promoted node: the former
    // primary is now its read-only replica.
    expect(await roleOf(deployment.primary.port)).toBe('master');
    expect(await roleOf(formerPrimary.port)).toBe('slave');
  }, 45_000);
});

async function roleOf(port: number): Promise<string> {
  const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  try {
    const [role] = (await client.call('ROLE')) as [string];
    return role;
  } finally {
    client.disconnect();
  }
}

describe('redis sentinel failover under revocations', () => {
  it('loses no acknowledged revocation when the primary fails over mid-load (WAIT 1 replica)', async () => {
    const keyPrefix = `tally-test:${randomUUID()}:`;
    const revoking = createRedisStore({ url: deployment.url, keyPrefix, replicasToWait: 1, commandTimeoutMs: 500 });
    await revoking.ping();
    const acknowledged: string[] = [];
    let refused = 0;
    let running = true;
    const load = (async () => {
      for (let i = 0; running; i++) {
        const subject = `user-${i}`;
        try {
          await revoking.revokeScope('subject', subject, HOUR_MS);
          acknowledged.push(subject);
        } catch {
          // Refused while the primary changes: not acknowledged, so allowed to be lost.
          refused++;
          await sleep(20);
        }
      }
    })();
    await eventually(async () => expect(acknowledged.length).toBeGreaterThan(50), 10_000);
    await deployment.failover();
    // Keep revoking against the new primary for a while.
    const settledAt = acknowledged.length;
    await eventually(async () => expect(acknowledged.length).toBeGreaterThan(settledAt + 50), RECOVERY_WITHIN_MS);
    running = false;
    await load;
    await revoking.close();

    const reader = createRedisStore({ url: deployment.url, keyPrefix });
    try {
      const lost: string[] = [];
      for (const subject of acknowledged) if ((await reader.revocationMark([['subject', subject]])) === 0) lost.push(subject);
      expect(lost).toEqual([]);
      console.info(`sentinel failover: ${acknowledged.length} revocations acknowledged, ${refused} refused during the switch, 0 lost`);
    } finally {
      await reader.close();
    }
  });
});
