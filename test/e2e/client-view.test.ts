// Clients answering Introspect from their local views (tally/client's
// localView), in processes of their own, watching revocations through three
// Tally replicas on one real Redis: exact across replicas, a dead, frozen or
// cut-off client costs a Revoke at most about one client lease and answers
// nothing from its cache after it, and a Redis emptied under a subscribed
// client makes it drop its cache.

import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { eventually } from '../support/eventually.js';
import { showWire } from '../support/keyed-callers.js';
import { startRedis, type RedisServerHandle } from '../support/redis-server.js';
import { createTallyClients, type TallyClients } from '../support/tally-clients.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { startViewClient, type ViewClientProcess } from '../support/view-client-process.js';

const MASTER_KEY = Buffer.alloc(32, 9).toString('base64');
const LEASE_MS = 1_000;
const CLIENT_LEASE_MS = 500;
const { issue, revoke } = TokenService.method;

interface Replica {
  tally: TallyProcess;
  clients: TallyClients;
}

type Target = { case: 'tokenId' | 'subject' | 'clientId' | 'sessionId'; value: string };

/** Each scope a revocation can name, in turn. */
function targetOf(trial: number, issued: { tokenId: string }): Target {
  const targets: Target[] = [
    { case: 'tokenId', value: issued.tokenId },
    { case: 'subject', value: `user-${trial}` },
    { case: 'clientId', value: `client-${trial}` },
    { case: 'sessionId', value: `session-${trial}` },
  ];
  return targets[trial % targets.length]!;
}

describe('clients with local views, on three replicas and one Redis', () => {
  let redis: RedisServerHandle;
  let replicas: Replica[] = [];
  const viewClients: ViewClientProcess[] = [];
  const cleanups: Array<() => Promise<unknown> | void> = [];

  beforeAll(async () => {
    redis = await startRedis({ appendonly: false });
    replicas = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const tally = await startTally({
          env: {
            TALLY_REDIS_URL: redis.url,
            TALLY_MASTER_KEY: MASTER_KEY,
            TALLY_LEASE_MS: String(LEASE_MS),
            TALLY_CLIENT_LEASE_MS: String(CLIENT_LEASE_MS),
            TALLY_REDIS_COMMAND_TIMEOUT: '500ms',
          },
        });
        return { tally, clients: createTallyClients(tally) };
      }),
    );
  });
  afterEach(async () => {
    await Promise.all(viewClients.splice(0).map((client) => client.stop()));
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    for (const { tally, clients } of replicas) {
      clients.close();
      await tally.stop();
    }
    await redis?.stop();
  });

  async function viewClient(url: string): Promise<ViewClientProcess> {
    const client = await startViewClient({ url });
    viewClients.push(client);
    await client.untilFresh();
    return client;
  }

  /** A client watching through each replica: clients[i] through replicas[i]. */
  const clientPerReplica = () => Promise.all(replicas.map(({ tally }) => viewClient(`http://${tally.grpcAddress}`)));

  it('1,000 revoke-then-introspect trials: a client watching through one replica never answers active after Revoke on another returned', async () => {
    const clients = await clientPerReplica();
    const lanes = 4;
    const trialsPerLane = 250;
    let activeBefore = 0;
    let activeAfterRevoke = 0;
    const hitsBefore = (await Promise.all(clients.map((client) => client.state()))).reduce((sum, state) => sum + state.hits, 0);
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (let i = 0; i < trialsPerLane; i++) {
          const trial = lane * trialsPerLane + i;
          const issuer = replicas[trial % 3]!;
          // The checking client watches through one replica; the revoke goes to another.
          const checker = clients[(trial + 1) % 3]!;
          const revoker = replicas[(trial + 2) % 3]!;
          const format = trial % 4 === 3 ? TokenFormat.JWT : TokenFormat.OPAQUE;
          const issued = await issuer.clients.grpc.unary(issue, { subject: `user-${trial}`, clientId: `client-${trial}`, sessionId: `session-${trial}`, format });
          // Asked twice: once to fill the cache, once answered from it, so a stale cache would show.
          for (let ask = 0; ask < 2; ask++) if ((await checker.introspect(issued.token)).active) activeBefore++;
          await revoker.clients.grpc.unary(revoke, { target: targetOf(trial, issued) });
          if ((await checker.introspect(issued.token)).active) activeAfterRevoke++;
        }
      }),
    );
    expect(activeBefore).toBe(2 * lanes * trialsPerLane);
    expect(activeAfterRevoke).toBe(0);
    // The second ask of nearly every trial came from a cache: the guarantee was tested on cached answers.
    const hits = (await Promise.all(clients.map((client) => client.state()))).reduce((sum, state) => sum + state.hits, 0) - hitsBefore;
    expect(hits).toBeGreaterThan(0.9 * lanes * trialsPerLane);
  }, 120_000);

  it('a client killed with SIGKILL and one frozen with SIGSTOP hold revokes up by at most about one client lease, and the frozen one answers nothing stale when it thaws', async () => {
    const [, killed, frozen] = await clientPerReplica();
    const revoker = replicas[0]!;
    const { token: frozenToken } = await revoker.clients.grpc.unary(issue, { subject: 'frozen-holder' });
    expect((await frozen!.introspect(frozenToken)).active).toBe(true);
    const latencies: number[] = [];
    for (let i = 0; i < 60; i++) {
      if (i === 10) killed!.signal('SIGKILL');
      if (i === 25) frozen!.signal('SIGSTOP');
      const { tokenId } = await revoker.clients.grpc.unary(issue, { subject: `user-${i}` });
      const started = performance.now();
      await revoker.clients.grpc.unary(revoke, { target: { case: 'tokenId', value: tokenId } }, { deadlineMs: 5_000 });
      latencies.push(performance.now() - started);
    }
    // The token the frozen client cached is revoked while it cannot hear of it.
    await revoker.clients.grpc.unary(revoke, { target: { case: 'subject', value: 'frozen-holder' } }, { deadlineMs: 5_000 });
    showWire('Revoke latencies (ms) with a client killed at 10 and one frozen at 25', latencies.map((ms) => ms.toFixed(1)).join(' '));
    expect(Math.max(...latencies)).toBeLessThan(CLIENT_LEASE_MS + 1_000);
    // Once both leases lapsed, revokes are fast again.
    expect(Math.max(...latencies.slice(-20))).toBeLessThan(CLIENT_LEASE_MS / 2);

    frozen!.signal('SIGCONT');
    // Its own clock says its lease is over: it asks Tally, which says inactive.
    expect(await frozen!.introspect(frozenToken)).toEqual({ active: false });
    await frozen!.untilFresh();
    expect((await frozen!.state()).breaks).toBeGreaterThanOrEqual(1);
    expect(await frozen!.introspect(frozenToken)).toEqual({ active: false });
  }, 60_000);

  it('a client cut off from Tally stops answering from its cache once its lease lapses, and fails closed', async () => {
    const proxy: TcpProxy = await startTcpProxy(Number(replicas[1]!.tally.grpcAddress.split(':')[1]));
    cleanups.push(() => proxy.close());
    const client = await viewClient(`http://127.0.0.1:${proxy.port}`);
    const revoker = replicas[0]!;
    const { token } = await revoker.clients.grpc.unary(issue, { subject: 'isolated' });
    expect((await client.introspect(token)).active).toBe(true);
    const hits = (await client.state()).hits;
    expect((await client.introspect(token)).active).toBe(true);
    expect((await client.state()).hits).toBe(hits + 1);

    proxy.pause();
    const started = performance.now();
    await revoker.clients.grpc.unary(revoke, { target: { case: 'subject', value: 'isolated' } }, { deadlineMs: 5_000 });
    expect(performance.now() - started).toBeLessThan(CLIENT_LEASE_MS + 1_000);
    // Revoke returned: the client must not answer active, and cannot reach Tally.
    const answer = await client.introspect(token);
    expect(answer.active).toBe(false);
    expect(answer.code).toBeDefined();
    expect((await client.state()).fresh).toBe(false);

    proxy.resume();
    await client.untilFresh();
    expect(await client.introspect(token)).toEqual({ active: false });
  }, 60_000);

  it('a Redis emptied under subscribed clients: they drop their caches, and every Revoke after holds at once', async () => {
    const clients = await clientPerReplica();
    const before = await replicas[0]!.clients.grpc.unary(issue, { subject: 'before-loss' });
    for (const client of clients) {
      expect((await client.introspect(before.token)).active).toBe(true);
      expect((await client.state()).size).toBeGreaterThan(0);
    }

    const admin = new Redis(redis.url);
    await admin.flushall();
    admin.disconnect();

    let activeAfterRevoke = 0;
    for (let trial = 0; trial < 30; trial++) {
      const issuer = replicas[trial % 3]!;
      const checker = clients[(trial + 1) % 3]!;
      const revoker = replicas[(trial + 2) % 3]!;
      const subject = `after-loss-${trial}`;
      const issued = await eventually(() => issuer.clients.grpc.unary(issue, { subject, clientId: `client-${trial}`, sessionId: `session-${trial}` }), 10_000);
      await checker.introspect(issued.token);
      await eventually(() => revoker.clients.grpc.unary(revoke, { target: { case: 'subject', value: subject } }, { deadlineMs: 5_000 }), 10_000);
      if ((await checker.introspect(issued.token)).active) activeAfterRevoke++;
    }
    expect(activeAfterRevoke).toBe(0);
    for (const client of clients) {
      // Each saw its stream end when its replica found the store set up again, and dropped its cache.
      expect((await client.state()).breaks).toBeGreaterThanOrEqual(1);
      await client.untilFresh();
      // What Redis lost is gone: the token from before is inactive everywhere.
      expect(await client.introspect(before.token)).toEqual({ active: false });
    }
  }, 60_000);
});
