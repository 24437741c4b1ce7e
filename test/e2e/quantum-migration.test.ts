// The migration of docs/quantum-safe.md, run on three Tally processes over one
// real Redis: add ML-DSA-65 beside EdDSA, move audiences over, make it the
// default, retire EdDSA. Tokens of both kinds are issued on every replica at
// every step and introspected on every replica after every step: none goes
// inactive before it expires or is revoked, none stays active after.

import { timestampMs } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { eventually } from '../support/eventually.js';
import { grpcStatusOf } from '../support/grpc-client.js';
import { startRedis, type RedisServerHandle } from '../support/redis-server.js';
import { createTallyClients, type TallyClients } from '../support/tally-clients.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const MASTER_KEY = Buffer.alloc(32, 9).toString('base64');
const MAX_TTL_SECONDS = 20;
const { issue, introspect, revoke, rotateKeys, setDefaultAlgorithm, retireAlgorithm, listKeys } = TokenService.method;

interface Replica {
  tally: TallyProcess;
  clients: TallyClients;
}

interface IssueShape {
  audience?: string[];
  algorithm?: string;
}

interface Tracked {
  token: string;
  tokenId: string;
  algorithm: string;
  step: string;
  expiresAt: number;
  revoked: boolean;
}

/** Time for an introspection to cross the expiry instant either way; no verdict is asserted this close to it. */
const EXPIRY_MARGIN_MS = 1_500;

describe('moving from EdDSA to ML-DSA-65 without a flag day, on three replicas', () => {
  let redis: RedisServerHandle;
  let replicas: Replica[];
  const tokens: Tracked[] = [];

  beforeAll(async () => {
    redis = await startRedis({ appendonly: false });
    replicas = [];
    // One after another: three processes compiling at once on a busy machine can miss the start-up wait.
    for (let index = 0; index < 3; index++) {
      const tally = await startTally({
        env: {
          TALLY_REDIS_URL: redis.url,
          TALLY_MASTER_KEY: MASTER_KEY,
          TALLY_KEY_ALGORITHM: 'EdDSA',
          TALLY_TOKEN_TTL: `${MAX_TTL_SECONDS}s`,
          TALLY_MAX_TOKEN_TTL: `${MAX_TTL_SECONDS}s`,
          TALLY_CLOCK_SKEW: '1s',
        },
        startTimeoutMs: 60_000,
      });
      replicas.push({ tally, clients: createTallyClients(tally) });
    }
  }, 240_000);
  afterAll(async () => {
    for (const replica of replicas ?? []) {
      replica.clients.close();
      await replica.tally.stop();
    }
    await redis?.stop();
  });

  /** A JWT from every replica, as the request asks; each is checked to be signed as expected. */
  async function issueEverywhere(step: string, request: IssueShape, expected: string): Promise<void> {
    for (const [index, replica] of replicas.entries()) {
      const issued = await replica.clients.grpc.unary(issue, { ...request, subject: `user-${tokens.length}`, format: TokenFormat.JWT });
      const algorithm = decodeProtectedHeader(issued.token).alg!;
      expect(algorithm, `${step}: replica ${index}`).toBe(expected);
      tokens.push({ token: issued.token, tokenId: issued.tokenId, algorithm, step, expiresAt: timestampMs(issued.expiresAt!), revoked: false });
    }
  }

  /** Every token so far, on every replica, over gRPC and Connect: active exactly when unexpired and unrevoked. */
  async function checkEverywhere(after: string): Promise<void> {
    const wrong: string[] = [];
    for (const tracked of tokens) {
      for (const [index, replica] of replicas.entries()) {
        const asked = Date.now();
        const answers = [
          (await replica.clients.grpc.unary(introspect, { token: tracked.token })).active,
          (await replica.clients.connect.introspect({ token: tracked.token })).active,
        ];
        const answered = Date.now();
        if (Math.abs(asked - tracked.expiresAt) < EXPIRY_MARGIN_MS || Math.abs(answered - tracked.expiresAt) < EXPIRY_MARGIN_MS) continue;
        const expected = !tracked.revoked && answered < tracked.expiresAt;
        for (const active of answers) {
          if (active !== expected) wrong.push(`${tracked.algorithm} token of "${tracked.step}" ${active ? 'wrongly active' : 'wrongly inactive'} on replica ${index}`);
        }
      }
    }
    expect(wrong, `after ${after}`).toEqual([]);
  }

  /** Waits until every replica issues as expected: a key change reaches the others through Redis. */
  async function everyReplicaIssues(request: IssueShape, expected: string): Promise<void> {
    for (const replica of replicas) {
      await eventually(async () => {
        const issued = await replica.clients.grpc.unary(issue, { ...request, subject: 'probe', format: TokenFormat.JWT });
        expect(decodeProtectedHeader(issued.token).alg).toBe(expected);
      }, 10_000);
    }
  }

  it('runs every step with tokens of both kinds issued and introspected throughout', async () => {
    const [first, second, third] = replicas as [Replica, Replica, Replica];

    // Before: EdDSA is the only key and the default.
    await issueEverywhere('before', { audience: ['orders'] }, 'EdDSA');
    await checkEverywhere('start');

    // Step 1: add ML-DSA-65 beside EdDSA. Nothing changes for callers that name no algorithm.
    const added = await second.clients.grpc.unary(rotateKeys, { algorithm: 'ML-DSA-65' });
    expect(added.keys.map((key) => [key.algorithm, key.isDefault])).toEqual([['EdDSA', true], ['ML-DSA-65', false]]);
    await everyReplicaIssues({ algorithm: 'ML-DSA-65' }, 'ML-DSA-65');
    await issueEverywhere('step 1: default', { audience: ['billing'] }, 'EdDSA');
    await issueEverywhere('step 1: ML-DSA-65 by name', { audience: ['orders'], algorithm: 'ML-DSA-65' }, 'ML-DSA-65');
    await checkEverywhere('adding ML-DSA-65');

    // Step 2: move audiences over, one at a time: issuers for orders name ML-DSA-65, billing stays on the default.
    await issueEverywhere('step 2: orders', { audience: ['orders'], algorithm: 'ML-DSA-65' }, 'ML-DSA-65');
    await issueEverywhere('step 2: billing', { audience: ['billing'] }, 'EdDSA');
    await checkEverywhere('moving orders over');

    // Step 3: make ML-DSA-65 the default; EdDSA still signs when named.
    const moved = await third.clients.grpc.unary(setDefaultAlgorithm, { algorithm: 'ML-DSA-65' });
    expect(moved.keys.map((key) => [key.algorithm, key.isDefault])).toEqual([['EdDSA', false], ['ML-DSA-65', true]]);
    await everyReplicaIssues({}, 'ML-DSA-65');
    await issueEverywhere('step 3: default', { audience: ['billing'] }, 'ML-DSA-65');
    await issueEverywhere('step 3: EdDSA by name', { audience: ['billing'], algorithm: 'EdDSA' }, 'EdDSA');
    await checkEverywhere('making ML-DSA-65 the default');

    // Step 4: retire EdDSA. Its key stops signing everywhere, and its tokens stay good until they expire.
    const retired = await first.clients.grpc.unary(retireAlgorithm, { algorithm: 'EdDSA' });
    const eddsa = retired.keys.find((key) => key.algorithm === 'EdDSA')!;
    expect(eddsa.retiresAt).toBeDefined();
    for (const replica of replicas) {
      await eventually(async () => {
        const status = await grpcStatusOf(replica.clients.grpc.unary(issue, { subject: 'probe', format: TokenFormat.JWT, algorithm: 'EdDSA' }));
        expect(status.code).toBe(grpc.status.FAILED_PRECONDITION);
      }, 10_000);
    }
    await issueEverywhere('step 4: default', { audience: ['orders'] }, 'ML-DSA-65');
    await checkEverywhere('retiring EdDSA');

    // Revocation covers both kinds, on every replica.
    const lastEdDsa = tokens.findLast((tracked) => tracked.algorithm === 'EdDSA')!;
    const lastMlDsa = tokens.findLast((tracked) => tracked.algorithm === 'ML-DSA-65')!;
    await second.clients.grpc.unary(revoke, { target: { case: 'token', value: lastEdDsa.token } });
    await third.clients.grpc.unary(revoke, { target: { case: 'tokenId', value: lastMlDsa.tokenId } });
    lastEdDsa.revoked = true;
    lastMlDsa.revoked = true;
    await checkEverywhere('revoking one token of each kind');

    // Once the last EdDSA token has expired, the EdDSA key leaves the ring and the JWKS.
    const retiresAt = timestampMs(eddsa.retiresAt!);
    await eventually(async () => {
      for (const replica of replicas) {
        const listed = await replica.clients.grpc.unary(listKeys, {});
        expect(listed.keys.map((key) => key.algorithm)).toEqual(['ML-DSA-65']);
      }
    }, retiresAt - Date.now() + 10_000);
    expect(Date.now()).toBeGreaterThanOrEqual(retiresAt);
    expect(Math.max(...tokens.filter((tracked) => tracked.algorithm === 'EdDSA').map((tracked) => tracked.expiresAt))).toBeLessThan(retiresAt);
    const jwks = (await (await fetch(`${first.tally.httpUrl}/.well-known/jwks.json`)).json()) as { keys: Array<{ alg: string }> };
    expect(jwks.keys.map((key) => key.alg)).toEqual(['ML-DSA-65']);
    await checkEverywhere('EdDSA left the ring');
  }, 180_000);
});
