import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedisStore } from '../../src/store/redis/redis-store.js';
import { testRedisUrl } from '../support/redis-server.js';
import { describeStoreConformance } from './conformance.js';

// Every test gets its own key prefix, so tests never see each other's data
// even on a shared server (TALLY_TEST_REDIS_URL). Expiry runs on Redis's own
// clock, so passTime really waits; the suite keeps those waits short.
describeStoreConformance('redis', async () => {
  const clock = { now: () => Date.now() };
  return {
    store: createRedisStore({ url: await testRedisUrl(), keyPrefix: `tally-test:${randomUUID()}:`, clock }),
    clock,
    passTime: (ms) => sleep(ms),
  };
});
