// Token values never reach the log: every RPC on both ports, successes and
// failures, then everything the process wrote is searched for every token.

import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { startRedis, type RedisServerHandle } from '../support/redis-server.js';
import { createTallyClients, type TallyClients } from '../support/tally-clients.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const { issue, introspect, revoke, rotateKeys, listKeys } = TokenService.method;

describe('the process log', () => {
  let redis: RedisServerHandle;
  let tally: TallyProcess;
  let clients: TallyClients;

  beforeAll(async () => {
    redis = await startRedis();
    tally = await startTally({
      env: {
        TALLY_REDIS_URL: redis.url,
        TALLY_MASTER_KEY: Buffer.alloc(32, 3).toString('base64'),
        TALLY_LOG_LEVEL: 'trace',
      },
    });
    clients = createTallyClients(tally);
  });
  afterAll(async () => {
    clients?.close();
    await tally?.stop();
    await redis?.stop();
  });

  it('holds no issued token value after every RPC over both ports, but names the tokens by id', async () => {
    const issued: { token: string; tokenId: string }[] = [];
    const track = <T extends { token: string; tokenId: string }>(answer: T) => (issued.push(answer), answer);

    for (const format of [TokenFormat.OPAQUE, TokenFormat.JWT]) {
      // gRPC port.
      const viaGrpc = track(await clients.grpc.unary(issue, { subject: 'alice', audience: ['orders'], format }));
      await clients.grpc.unary(introspect, { token: viaGrpc.token });
      await clients.grpc.unary(introspect, { token: viaGrpc.token, audience: 'billing' });
      await clients.grpc.unary(introspect, { token: `${viaGrpc.token}x` });
      await clients.grpc.unary(revoke, { target: { case: 'token', value: viaGrpc.token } });
      await clients.grpc.unary(introspect, { token: viaGrpc.token });

      // HTTP port, each protocol.
      for (const client of [clients.connect, clients.connectBinary, clients.grpcWeb]) {
        const viaHttp = track(await client.issue({ subject: 'bob', format, claims: { note: 'hello' } }));
        await client.introspect({ token: viaHttp.token, requiredScopes: ['missing'] });
        await client.introspect({ token: viaHttp.token });
        await client.revoke({ target: { case: 'token', value: viaHttp.token } });
        await client.revoke({ target: { case: 'tokenId', value: viaHttp.tokenId } });
        // A failing call that carries a token alongside the fault.
        const refused = await client.issue({ subject: viaHttp.token.slice(0, 300) + '\u0000' }).catch((error: unknown) => error);
        expect(ConnectError.from(refused).code).toBe(Code.InvalidArgument);
      }
    }
    await clients.grpc.unary(rotateKeys, {});
    await clients.connect.rotateKeys({ algorithm: 'ES384' });
    await clients.grpc.unary(listKeys, {});
    await clients.grpcWeb.listKeys({});
    await clients.grpc.unary(revoke, { target: { case: 'subject', value: 'alice' } });
    await clients.connect.revoke({ target: { case: 'clientId', value: 'web' } });
    await clients.connect.revoke({ target: { case: 'sessionId', value: 'session' } });

    await tally.stop();
    const everything = tally.stdout() + tally.stderr();
    for (const { token, tokenId } of issued) {
      expect(everything).not.toContain(token);
      // A JWT's parts would leak its claims and signature even without the whole.
      for (const part of token.split('.')) expect(everything).not.toContain(part);
      expect(everything).toContain(tokenId);
    }
  });
});
