// The walkthrough a new user follows, against the real server process:
// issue → introspect active → revoke → introspect inactive, over both ports,
// with the embedded memory store and with Redis.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { startRedis, type RedisServerHandle } from '../support/redis-server.js';
import { createTallyClients, type TallyClients } from '../support/tally-clients.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const MASTER_KEY = Buffer.alloc(32, 42).toString('base64');
const { issue, introspect, revoke } = TokenService.method;

describe.each([
  { store: 'memory', redis: false },
  { store: 'Redis', redis: true },
])('walkthrough on the $store store', ({ redis }) => {
  let redisServer: RedisServerHandle | undefined;
  let tally: TallyProcess;
  let clients: TallyClients;

  beforeAll(async () => {
    redisServer = redis ? await startRedis() : undefined;
    tally = await startTally({
      env: redisServer === undefined ? {} : { TALLY_REDIS_URL: redisServer.url, TALLY_MASTER_KEY: MASTER_KEY },
    });
    clients = createTallyClients(tally);
  });
  afterAll(async () => {
    clients?.close();
    await tally?.stop();
    await redisServer?.stop();
  });

  it.each([TokenFormat.OPAQUE, TokenFormat.JWT])('over gRPC, format %i', async (format) => {
    const issued = await clients.grpc.unary(issue, { subject: 'alice', scopes: ['read'], format });
    expect((await clients.grpc.unary(introspect, { token: issued.token })).active).toBe(true);
    await clients.grpc.unary(revoke, { target: { case: 'token', value: issued.token } });
    expect((await clients.grpc.unary(introspect, { token: issued.token })).active).toBe(false);
  });

  it.each([TokenFormat.OPAQUE, TokenFormat.JWT])('over Connect, format %i', async (format) => {
    const issued = await clients.connect.issue({ subject: 'bob', audience: ['orders'], format });
    expect(await clients.connect.introspect({ token: issued.token, audience: 'orders' })).toMatchObject({ active: true, subject: 'bob' });
    await clients.connect.revoke({ target: { case: 'subject', value: 'bob' } });
    expect((await clients.connect.introspect({ token: issued.token })).active).toBe(false);
  });

  it('a token issued on one port introspects on the other', async () => {
    const issued = await clients.grpcWeb.issue({ subject: 'carol' });
    expect((await clients.grpc.unary(introspect, { token: issued.token })).active).toBe(true);
  });

  it('warns when the store is memory that nothing is shared or kept', () => {
    const warning = tally.logs().find((line) => String(line.msg).includes('TALLY_REDIS_URL is not set'));
    expect(warning !== undefined).toBe(!redis);
  });
});
