import { testRedisUrl } from '../support/redis-server.js';
import { describeStoreConformance } from './conformance.js';
import { redisStoreHarness } from './redis-harness.js';

describeStoreConformance('redis', async () => redisStoreHarness(await testRedisUrl()));
