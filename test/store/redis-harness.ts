// The conformance harness for a Redis store, whatever the topology behind the
// URL. Every test gets its own key prefix, so tests never see each other's
// data on a shared server. Expiry runs on Redis's own clock, so passTime
// really waits (the suite keeps those waits short). The store is connected
// before it is handed over: finding a Sentinel's primary or a Cluster's slot
// map can take longer than the suite's shortest token lives.
//
// The store is handed over as one set up long ago (its identity written with
// `since` 0): revocations made within a lease of a store being set up wait
// out that lease (the fence in scripts.ts, tested in scripts.test.ts and
// redis-store-loss.test.ts), which would stretch the suite's short spans.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedisClient } from '../../src/store/redis/connect.js';
import { parseRedisUrl } from '../../src/store/redis/connection-url.js';
import { createKeyNames } from '../../src/store/redis/keys.js';
import { createRedisStore, type RedisStoreOptions } from '../../src/store/redis/redis-store.js';
import type { StoreHarness } from './conformance.js';

export async function redisStoreHarness(url: string, options: Omit<RedisStoreOptions, 'url' | 'keyPrefix' | 'clock'> = {}): Promise<StoreHarness> {
  const clock = { now: () => Date.now() };
  const keyPrefix = `tally-test:${randomUUID()}:`;
  await setUpLongAgo(url, keyPrefix);
  const store = createRedisStore({ ...options, url, keyPrefix, clock });
  await store.ping();
  return { store, clock, passTime: (ms) => sleep(ms) };
}

/** Writes the store's identity as if it had been set up long before any replica took a lease. */
export async function setUpLongAgo(url: string, keyPrefix: string): Promise<void> {
  const client = createRedisClient(parseRedisUrl(url), { commandTimeoutMs: 5_000, reconnectMaxDelayMs: 1_000 });
  client.on('error', () => {});
  try {
    await eventuallyReady(client);
    await client.hset(createKeyNames(keyPrefix).identity, 'id', randomUUID(), 'since', 0);
  } finally {
    client.disconnect();
  }
}

async function eventuallyReady(client: ReturnType<typeof createRedisClient>): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('Redis did not become ready within 10 s')), 10_000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
