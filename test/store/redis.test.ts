import { testRedisUrl } from '../support/redis-server.js';
import { describeStoreConformance } from './conformance.js';
import { redisStoreHarness } from './redis-harness.js';

describeStoreConformance('redis', async () => redisStoreHarness(await testRedisUrl()), {
  withoutHolders: 'with the cache off (TALLY_CACHE_SIZE=0) a replica follows no events to pass on',
});
