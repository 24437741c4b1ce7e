// When Redis comes back with less than it had: emptied by FLUSHALL, or
// restarted with nothing kept. Replicas that stayed up must notice, drop their
// local views (marks, token cache, stream position, key ring), and from then
// on answer every token exactly as a replica started afresh does; every
// Revoke that returned after the loss holds at once on every replica.
// The Sentinel and Cluster variants: redis-sentinel-loss.test.ts, redis-cluster-loss.test.ts.
import { Redis } from 'ioredis';
import { afterEach, describe, it } from 'vitest';
import { startRedis, type RedisServerHandle } from '../support/redis-server.js';
import { expectExactThroughLoss, viewReplicaGroup, type ViewReplicaGroup } from '../support/view-replicas.js';

const LEASE_MS = 400;

const groups: ViewReplicaGroup[] = [];
const servers: RedisServerHandle[] = [];
afterEach(async () => {
  await Promise.all(groups.splice(0).map((group) => group.closeAll()));
  await Promise.all(servers.splice(0).map((server) => server.kill()));
});

const losses: Array<[string, (server: RedisServerHandle) => Promise<void>]> = [
  ['emptied by FLUSHALL', async (server) => {
    const client = new Redis(server.url);
    await client.flushall();
    client.disconnect();
  }],
  ['restarted after a crash with nothing kept', async (server) => {
    await server.kill();
    await server.restart();
  }],
];

describe.each(losses)('Redis %s under live replicas', (_name, lose) => {
  it('every Revoke that returns after the loss holds at once on every replica, and live replicas answer every token as a fresh one does', async () => {
    const server = await startRedis({ appendonly: false });
    servers.push(server);
    const group = viewReplicaGroup(server.url, { leaseMs: LEASE_MS });
    groups.push(group);
    await expectExactThroughLoss({ group, lose: () => lose(server), expectedChange: 'set-up-again', activeFromBefore: [false, false, false], keysKept: false });
  });
});
