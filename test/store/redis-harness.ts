// The conformance harness for a Redis store, whatever the topology behind the
// URL. Every test gets its own key prefix, so tests never see each other's
// data on a shared server. Expiry runs on Redis's own clock, so passTime
// really waits (the suite keeps those waits short). The store is connected
// before it is handed over: finding a Sentinel's primary or a Cluster's slot
// map can take longer than the suite's shortest token lives.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedisStore, type RedisStoreOptions } from '../../src/store/redis/redis-store.js';
import type { StoreHarness } from './conformance.js';

export async function redisStoreHarness(url: string, options: Omit<RedisStoreOptions, 'url' | 'keyPrefix' | 'clock'> = {}): Promise<StoreHarness> {
  const clock = { now: () => Date.now() };
  const store = createRedisStore({ ...options, url, keyPrefix: `tally-test:${randomUUID()}:`, clock });
  await store.ping();
  return { store, clock, passTime: (ms) => sleep(ms) };
}
