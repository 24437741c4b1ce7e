// Tally on a real redis-server: what must hold when either of them restarts
// or stops, and across replicas.

import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyState, TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { eventually } from '../support/eventually.js';
import { grpcStatusOf } from '../support/grpc-client.js';
import { startRedis, type RedisServerHandle } from '../support/redis-server.js';
import { createTallyClients, kidOf, type TallyClients } from '../support/tally-clients.js';
import { runTallyToExit, startTally, type TallyProcess } from '../support/tally-process.js';

const MASTER_KEY = Buffer.alloc(32, 9).toString('base64');
const { issue, introspect, rotateKeys, listKeys } = TokenService.method;

describe('Tally on Redis', () => {
  const cleanups: (() => Promise<unknown> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups.length = 0;
  });

  async function redisServer(): Promise<RedisServerHandle> {
    const server = await startRedis({ appendonly: true });
    cleanups.push(() => server.stop());
    return server;
  }

  async function tallyOn(redis: RedisServerHandle, env: Record<string, string> = {}): Promise<{ tally: TallyProcess; clients: TallyClients }> {
    const tally = await startTally({ env: { TALLY_REDIS_URL: redis.url, TALLY_MASTER_KEY: MASTER_KEY, ...env } });
    const clients = createTallyClients(tally);
    cleanups.push(() => tally.stop(), () => clients.close());
    return { tally, clients };
  }

  it('tokens (opaque and JWT), revocations and keys survive a Tally restart', async () => {
    const redis = await redisServer();
    const first = await tallyOn(redis);
    const opaque = await first.clients.grpc.unary(issue, { subject: 'alice' });
    const jwt = await first.clients.grpc.unary(issue, { subject: 'alice', format: TokenFormat.JWT });
    const revoked = await first.clients.grpc.unary(issue, { subject: 'mallory', format: TokenFormat.JWT });
    await first.clients.grpc.unary(TokenService.method.revoke, { target: { case: 'subject', value: 'mallory' } });
    const keysBefore = await first.clients.grpc.unary(listKeys, {});
    expect(await first.tally.stop()).toEqual({ code: 0, signal: null });

    const second = await tallyOn(redis);
    expect((await second.clients.grpc.unary(introspect, { token: opaque.token })).active).toBe(true);
    expect((await second.clients.connect.introspect({ token: jwt.token })).active).toBe(true);
    expect((await second.clients.grpc.unary(introspect, { token: revoked.token })).active).toBe(false);
    const keysAfter = await second.clients.grpc.unary(listKeys, {});
    expect(keysAfter.keys.map((key) => key.kid)).toEqual(keysBefore.keys.map((key) => key.kid));
  });

  it('with Redis stopped and the cache off, Introspect answers UNAVAILABLE at once (never active), health says NOT_SERVING, and all recovers by itself', async () => {
    const redis = await redisServer();
    const { tally, clients } = await tallyOn(redis, { TALLY_HEALTH_CHECK_INTERVAL: '100ms', TALLY_CACHE_SIZE: '0' });
    const issued = await clients.grpc.unary(issue, { subject: 'alice' });
    const jwt = await clients.grpc.unary(issue, { subject: 'alice', format: TokenFormat.JWT });

    await redis.stop();
    for (const token of [issued.token, jwt.token]) {
      const status = await grpcStatusOf(clients.grpc.unary(introspect, { token }, { deadlineMs: 5_000 }));
      expect(status.code).toBe(grpc.status.UNAVAILABLE);
      expect(status.details).not.toContain(token);
    }
    await eventually(async () => expect((await fetch(`${tally.httpUrl}/readyz`)).status).toBe(503), 5_000);

    await redis.restart();
    await eventually(async () => {
      expect((await clients.grpc.unary(introspect, { token: issued.token })).active).toBe(true);
      expect((await fetch(`${tally.httpUrl}/readyz`)).status).toBe(200);
    }, 10_000);
    expect((await clients.grpc.unary(introspect, { token: jwt.token })).active).toBe(true);
  });

  it('with Redis stopped and the cache on, cached tokens stop being active once the lease has lapsed, and all recovers by itself', async () => {
    const leaseMs = 500;
    const redis = await redisServer();
    const { clients } = await tallyOn(redis, { TALLY_LEASE_MS: String(leaseMs) });
    const issued = await clients.grpc.unary(issue, { subject: 'alice' });
    expect((await clients.grpc.unary(introspect, { token: issued.token })).active).toBe(true);

    await redis.stop();
    const stoppedAt = performance.now();
    // Within the lease the view may still answer (no revocation can complete
    // without Redis); once the lease has lapsed, the token must not be active.
    let firstRefusalMs: number | undefined;
    while (performance.now() - stoppedAt < leaseMs + 1_500) {
      const sentAt = performance.now() - stoppedAt;
      const outcome = await clients.grpc.unary(introspect, { token: issued.token }, { deadlineMs: 3_000 }).then(
        (response) => ({ active: response.active, code: grpc.status.OK }),
        (error: { code: grpc.status }) => ({ active: false, code: error.code }),
      );
      if (outcome.code === grpc.status.OK) {
        expect(outcome.active).toBe(true);
        expect(sentAt, 'answered active after the lease lapsed').toBeLessThan(leaseMs);
      } else {
        expect(outcome.code).toBe(grpc.status.UNAVAILABLE);
        firstRefusalMs ??= sentAt;
      }
    }
    expect(firstRefusalMs).toBeDefined();

    await redis.restart();
    await eventually(async () => expect((await clients.grpc.unary(introspect, { token: issued.token })).active).toBe(true), 10_000);
  });

  it('a Tally started while Redis is down waits, not ready, and serves once Redis is up', async () => {
    const redis = await redisServer();
    await redis.stop();
    const tally = await startTally({
      env: { TALLY_REDIS_URL: redis.url, TALLY_MASTER_KEY: MASTER_KEY },
      waitUntilReady: false,
    });
    cleanups.push(() => tally.stop());
    expect((await fetch(`${tally.httpUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${tally.httpUrl}/readyz`)).status).toBe(503);
    await redis.restart();
    await eventually(async () => expect((await fetch(`${tally.httpUrl}/readyz`)).status).toBe(200), 15_000);
  });

  it('RotateKeys through one Tally is used by another on the same Redis without a restart', async () => {
    const redis = await redisServer();
    const refresh = { TALLY_KEY_REFRESH_INTERVAL: '200ms' };
    const first = await tallyOn(redis, refresh);
    const second = await tallyOn(redis, refresh);

    const signedBefore = await first.clients.grpc.unary(issue, { subject: 'alice', format: TokenFormat.JWT });
    const oldKid = kidOf(signedBefore.token);
    expect(kidOf((await second.clients.grpc.unary(issue, { subject: 'bob', format: TokenFormat.JWT })).token)).toBe(oldKid);

    const rotated = await first.clients.grpc.unary(rotateKeys, { algorithm: 'EdDSA' });
    const newKid = rotated.keys.find((key) => key.state === KeyState.ACTIVE)!.kid;
    expect(newKid).not.toBe(oldKid);

    // Within the refresh interval (plus scheduling), the second signs with the new key...
    const started = performance.now();
    await eventually(async () => {
      const token = (await second.clients.grpc.unary(issue, { subject: 'bob', format: TokenFormat.JWT })).token;
      expect(kidOf(token)).toBe(newKid);
    }, 5_000);
    expect(performance.now() - started).toBeLessThan(2_000);
    // ...and still verifies what the first signed with the old one, and what it signs with the new one.
    expect((await second.clients.grpc.unary(introspect, { token: signedBefore.token })).active).toBe(true);
    const signedAfter = await first.clients.grpc.unary(issue, { subject: 'alice', format: TokenFormat.JWT });
    expect(kidOf(signedAfter.token)).toBe(newKid);
    expect((await second.clients.connect.introspect({ token: signedAfter.token })).active).toBe(true);
  });

  it('refuses to start with a master key other than the one the store was set up with', async () => {
    const redis = await redisServer();
    const first = await tallyOn(redis);
    await first.tally.stop();
    const other = await runTallyToExit({
      env: {
        TALLY_GRPC_PORT: '0',
        TALLY_HTTP_PORT: '0',
        TALLY_REDIS_URL: redis.url,
        TALLY_MASTER_KEY: Buffer.alloc(32, 1).toString('base64'),
      },
    });
    expect(other.code).toBe(1);
    expect(other.stdout).toContain('another master key');
  });
});
