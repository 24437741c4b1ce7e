// Three Tally processes on one real Redis, each answering from its own local
// view under a lease: revocation stays exact across them, a dead or cut-off
// replica costs revokes at most about one lease, and key changes reach all.

import * as grpc from '@grpc/grpc-js';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { eventually } from '../support/eventually.js';
import { startRedis, type RedisServerHandle } from '../support/redis-server.js';
import { createTallyClients, kidOf, type TallyClients } from '../support/tally-clients.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const MASTER_KEY = Buffer.alloc(32, 7).toString('base64');
const LEASE_MS = 1_000;
const { issue, introspect, revoke, rotateKeys, listKeys } = TokenService.method;

interface Replica {
  tally: TallyProcess;
  clients: TallyClients;
}

describe('three replicas on one Redis', () => {
  let redis: RedisServerHandle;
  const cleanups: Array<() => Promise<unknown> | void> = [];
  beforeAll(async () => {
    redis = await startRedis({ appendonly: false });
  });
  afterAll(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    // Each test starts from an empty Redis: keys, marks and leases of the last one are gone.
    const { Redis } = await import('ioredis');
    const client = new Redis(redis.url);
    await client.flushall();
    client.disconnect();
  });

  async function replica(env: Record<string, string> = {}, redisUrl = redis.url): Promise<Replica> {
    const tally = await startTally({
      env: { TALLY_REDIS_URL: redisUrl, TALLY_MASTER_KEY: MASTER_KEY, TALLY_LEASE_MS: String(LEASE_MS), TALLY_REDIS_COMMAND_TIMEOUT: '500ms', ...env },
    });
    const clients = createTallyClients(tally);
    cleanups.push(() => tally.stop(), () => clients.close());
    return { tally, clients };
  }

  const replicas = (count: number, env: Record<string, string> = {}) => Promise.all(Array.from({ length: count }, () => replica(env)));

  it('1,000 revoke-then-introspect trials across replicas: never active after Revoke returns', async () => {
    const all = await replicas(3);
    const lanes = 4;
    const trialsPerLane = 250;
    let activeAfterRevoke = 0;
    let activeBefore = 0;
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (let i = 0; i < trialsPerLane; i++) {
          const trial = lane * trialsPerLane + i;
          const [issuer, revoker, checker] = [all[trial % 3]!, all[(trial + 1) % 3]!, all[(trial + 2) % 3]!];
          const format = trial % 4 === 3 ? TokenFormat.JWT : TokenFormat.OPAQUE;
          const issued = await issuer.clients.grpc.unary(issue, { subject: `user-${trial}`, clientId: `client-${trial}`, sessionId: `session-${trial}`, format });
          // The checker caches the token first, so a stale cache would show.
          if ((await checker.clients.grpc.unary(introspect, { token: issued.token })).active) activeBefore++;
          const target = [
            { case: 'tokenId' as const, value: issued.tokenId },
            { case: 'subject' as const, value: `user-${trial}` },
            { case: 'clientId' as const, value: `client-${trial}` },
            { case: 'sessionId' as const, value: `session-${trial}` },
          ][trial % 4]!;
          await revoker.clients.grpc.unary(revoke, { target });
          if ((await checker.clients.grpc.unary(introspect, { token: issued.token })).active) activeAfterRevoke++;
        }
      }),
    );
    expect(activeBefore).toBe(lanes * trialsPerLane);
    expect(activeAfterRevoke).toBe(0);
    // 4,000 calls over three processes: about 20 s on two idle cores, more when other suites share them.
  }, 120_000);

  it('a replica killed with SIGKILL while revokes run holds them up by at most about one lease', async () => {
    const [revoker, , victim] = await replicas(3);
    const latencies: number[] = [];
    for (let i = 0; i < 60; i++) {
      if (i === 15) victim!.tally.signal('SIGKILL');
      const { tokenId } = await revoker!.clients.grpc.unary(issue, { subject: `user-${i}` });
      const started = performance.now();
      await revoker!.clients.grpc.unary(revoke, { target: { case: 'tokenId', value: tokenId } }, { deadlineMs: 5_000 });
      latencies.push(performance.now() - started);
    }
    expect(latencies).toHaveLength(60);
    expect(Math.max(...latencies)).toBeLessThan(LEASE_MS + 1_000);
    // Once its lease has lapsed the dead replica is forgotten: revokes are fast again.
    expect(Math.max(...latencies.slice(-20))).toBeLessThan(LEASE_MS / 2);
  });

  it('a replica cut off from Redis no longer answers active from its cache once its lease lapses', async () => {
    const proxy: TcpProxy = await startTcpProxy(redis.port);
    cleanups.push(() => proxy.close());
    const [revoker] = await replicas(1);
    const isolated = await replica({}, `redis://127.0.0.1:${proxy.port}`);
    const { token } = await revoker!.clients.grpc.unary(issue, { subject: 'alice' });
    expect((await isolated.clients.grpc.unary(introspect, { token })).active).toBe(true);

    proxy.pause();
    const started = performance.now();
    await revoker!.clients.grpc.unary(revoke, { target: { case: 'subject', value: 'alice' } }, { deadlineMs: 5_000 });
    expect(performance.now() - started).toBeLessThan(LEASE_MS + 1_000);
    const answer = await isolated.clients.grpc.unary(introspect, { token }, { deadlineMs: 5_000 }).then(
      (response) => ({ code: grpc.status.OK, active: response.active }),
      (error: { code: grpc.status }) => ({ code: error.code, active: false }),
    );
    expect(answer.active).toBe(false);
    expect(answer.code).toBe(grpc.status.UNAVAILABLE);

    proxy.resume();
    await eventually(async () => {
      const healed = await isolated.clients.grpc.unary(introspect, { token });
      expect(healed.active).toBe(false);
    }, 10_000);
  });

  it('RotateKeys on one replica: every replica signs with the new key at once and still verifies the old', async () => {
    // Polling is slowed to an hour: only the key-ring event can make the others switch.
    const all = await replicas(3, { TALLY_KEY_REFRESH_INTERVAL: '1h' });
    const oldTokens = await Promise.all(all.map(({ clients }) => clients.grpc.unary(issue, { subject: 'alice', format: TokenFormat.JWT })));
    const oldKid = kidOf(oldTokens[0]!.token);
    const ring = await all[0]!.clients.grpc.unary(rotateKeys, { algorithm: 'EdDSA' });
    const newKid = ring.keys.find((key) => key.state === 1)!.kid;
    expect(newKid).not.toBe(oldKid);
    for (const { clients } of all) {
      await eventually(async () => {
        const { token } = await clients.grpc.unary(issue, { subject: 'bob', format: TokenFormat.JWT });
        expect(kidOf(token)).toBe(newKid);
      }, 2_000);
      for (const old of oldTokens) expect((await clients.grpc.unary(introspect, { token: old.token })).active).toBe(true);
    }
  });

  it('scheduled rotation: one new key per interval across three replicas, not three', async () => {
    const intervalMs = 1_500;
    const all = await replicas(3, { TALLY_KEY_ROTATION_INTERVAL: `${intervalMs}ms`, TALLY_KEY_REFRESH_INTERVAL: '100ms' });
    const watchMs = 5_500;
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, watchMs));
    const { keys } = await all[1]!.clients.grpc.unary(listKeys, {});
    const created = keys.map((key) => timestampMs(key.createdAt!)).sort((a, b) => a - b);
    const madeWhileWatching = created.filter((at) => at >= started);
    // Three full intervals fit in the window (a fourth may be on its way).
    expect(madeWhileWatching.length).toBeGreaterThanOrEqual(3);
    expect(madeWhileWatching.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < created.length; i++) expect(created[i]! - created[i - 1]!).toBeGreaterThanOrEqual(intervalMs - 50);
    expect(keys.filter((key) => key.state === 1)).toHaveLength(1);
  });
});
