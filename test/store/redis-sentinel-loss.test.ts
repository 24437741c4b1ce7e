// A Sentinel failover to a replica that was behind, with Revoke not waiting
// for Redis replicas (TALLY_REDIS_WAIT_REPLICAS=0), so the loss is real: the
// primary dies holding tokens and a revocation its replica never received.
// Replicas of Tally that stay up must notice the store went back, and from
// then on answer exactly as a fresh replica does.
import { afterAll, describe, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { withNodeClient } from '../support/redis-node-client.js';
import { SENTINEL_MASTER_NAME, startRedisSentinel, type RedisSentinelHandle } from '../support/redis-sentinel.js';
import { expectExactThroughLoss, viewReplicaGroup, type ViewReplicaGroup } from '../support/view-replicas.js';

let deployment: RedisSentinelHandle | undefined;
let group: ViewReplicaGroup | undefined;
afterAll(async () => {
  await group?.closeAll();
  await deployment?.stop();
});

describe('a Sentinel failover to a replica that was behind', () => {
  it('every Revoke that returns after the failover holds at once on every replica, and live replicas answer every token as a fresh one does', async () => {
    deployment = await startRedisSentinel({ sentinels: 1, downAfterMs: 500 });
    const [primary, replica, sentinel] = [deployment.primary, deployment.replica, deployment.sentinels[0]!];
    group = viewReplicaGroup(deployment.url, { leaseMs: 400 });
    await expectExactThroughLoss({
      group,
      expectedChange: 'went-back',
      // The revocation of before-opaque was lost with the primary.
      activeFromBefore: [true, true, false],
      keysKept: true,
      async beforeLoss([first, second]) {
        // The replica hears nothing of what follows: paused, and its link
        // cut, so no write waits for it in a socket buffer either.
        replica.pause();
        await withNodeClient(primary.port, (client) => client.call('CLIENT', 'KILL', 'TYPE', 'replica'));
        const lost = [
          (await first!.service.issue({ subject: 'lost-opaque' })).token,
          (await second!.service.issue({ subject: 'lost-jwt', format: 'jwt' })).token,
        ];
        await first!.service.revoke({ kind: 'subject', value: 'before-opaque' });
        return lost;
      },
      async lose() {
        await primary.kill();
        replica.resume();
        await eventually(async () => {
          const address = (await withNodeClient(sentinel.port, (client) => client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER_NAME))) as string[];
          if (address[1] !== String(replica.port)) throw new Error(`Sentinel still names ${address.join(':')}`);
          const role = (await withNodeClient(replica.port, (client) => client.call('ROLE'))) as [string];
          if (role[0] !== 'master') throw new Error('not promoted yet');
        }, 20_000);
      },
    });
  }, 90_000);
});
