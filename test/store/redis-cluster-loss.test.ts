// A Redis Cluster primary that loses the revocation slot's data: the node
// owning {revocations} crashes and comes back empty (its slots, nothing
// else), while token records on the other primaries live on. Replicas of
// Tally that stay up must notice the store was set up again, and from then on
// answer exactly as a fresh replica does.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { afterAll, describe, it } from 'vitest';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster.js';
import { withNodeClient } from '../support/redis-node-client.js';
import { expectExactThroughLoss, viewReplicaGroup, type ViewReplicaGroup } from '../support/view-replicas.js';

let cluster: RedisClusterHandle | undefined;
let group: ViewReplicaGroup | undefined;
afterAll(async () => {
  await group?.closeAll();
  await cluster?.stop();
});

describe('a Cluster primary that loses the revocation slot', () => {
  it('every Revoke that returns after the loss holds at once on every replica, and live replicas answer every token as a fresh one does', async () => {
    cluster = await startRedisCluster({ primaries: 3 });
    const slot = calculateSlot('{revocations}');
    const ranges = (await withNodeClient(cluster.nodes[0]!.port, (client) => client.call('CLUSTER', 'SLOTS'))) as Array<[number, number, [string, number]]>;
    const [, , [, ownerPort]] = ranges.find(([from, to]) => from <= slot && slot <= to)!;
    const owner = cluster.nodes.find((node) => node.port === ownerPort)!;
    group = viewReplicaGroup(cluster.url, { leaseMs: 400 });
    await expectExactThroughLoss({
      group,
      expectedChange: 'set-up-again',
      // Records on the other primaries live on, but the marks and the key
      // ring were on the lost slot: the store is set up again with a floor
      // that revokes every token from before (a revocation lost with the
      // slot must not bring its token back), and the JWTs' key is gone.
      activeFromBefore: [false, false, false],
      keysKept: false,
      async lose() {
        await owner.kill();
        rmSync(join(owner.dir, 'appendonlydir'), { recursive: true, force: true });
        await owner.restart();
      },
    });
  }, 120_000);
});
