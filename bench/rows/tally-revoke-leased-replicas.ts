import { create } from '@bufbuild/protobuf';
import { Redis } from 'ioredis';
import { createKeyNames } from '../../src/store/redis/keys.js';
import {
  IntrospectRequestSchema,
  IntrospectResponseSchema,
  IssueResponseSchema,
  IssueRequestSchema,
  RevokeRequestSchema,
  RevokeResponseSchema,
  TokenFormat,
  type IssueResponse,
} from '../../src/gen/tally/v1/token_service_pb.js';
import { delay } from '../lib/child-processes.js';
import { benchIssueRequest, introspectPath, issuePath, revokePath } from '../lib/fixtures.js';
import { createUnaryClient, type UnaryClient } from '../lib/grpc-client.js';
import { percentile } from '../lib/percentiles.js';
import type { Measurement, Row } from '../lib/row.js';

const revocations = 1_000;
// Enough calls in flight to set up and check 1,000 tokens in a moment, few enough not to queue.
const setUpConcurrency = 32;

export const tallyRevokeLeasedReplicas: Row = {
  name: 'Tally gRPC Revoke by token_id, 3 leased replicas',
  description:
    `${revocations.toLocaleString('en-US')} sequential Revoke calls (by token_id, one gRPC channel) on one of three Tally replicas with the default ` +
    'cache, each holding a lease on the same Redis, so every Revoke waits until all three have applied its event; ' +
    'calls/s is sequential revokes per second, p50/p99 the latency of one Revoke',
  async measure(context): Promise<Measurement> {
    const replicas = await context.leasedReplicas();
    const { url } = await context.redis();
    const liveLeases = await untilLeasesHeld(url, replicas.length);
    const clients = replicas.map((replica) => createUnaryClient(replica.grpcAddress));
    const [revoking, ...others] = clients as [UnaryClient, UnaryClient, UnaryClient];
    try {
      const tokens = await inParallel(Array.from({ length: revocations }, (_, index) => index), () =>
        revoking.call(issuePath, IssueRequestSchema, IssueResponseSchema, benchIssueRequest(TokenFormat.OPAQUE)),
      );
      // The other replicas cache every token first, so each Revoke has caches to invalidate.
      await expectActivity(others, tokens, true);

      const milliseconds: number[] = [];
      const start = performance.now();
      for (const { tokenId } of tokens) {
        const before = performance.now();
        await revoking.call(revokePath, RevokeRequestSchema, RevokeResponseSchema, create(RevokeRequestSchema, { target: { case: 'tokenId', value: tokenId } }));
        milliseconds.push(performance.now() - before);
      }
      const elapsed = performance.now() - start;

      // The point of waiting on leases: once Revoke returned, no replica answers active.
      await expectActivity(clients, tokens, false);
      milliseconds.sort((a, b) => a - b);
      return {
        callsPerSecond: revocations / (elapsed / 1_000),
        p50Milliseconds: percentile(milliseconds, 0.5),
        p99Milliseconds: percentile(milliseconds, 0.99),
        requests: revocations,
        command: 'bench/rows/tally-revoke-leased-replicas.ts (a grpc-js client in the bench process)',
        notes: [
          `${liveLeases} live leases in Redis before the revokes`,
          `every token was introspected active on the two other replicas before, and inactive on all three after`,
          `max ${milliseconds[milliseconds.length - 1]!.toFixed(2)} ms`,
        ],
      };
    } finally {
      for (const client of clients) client.close();
    }
  },
};

/** Replicas (and clients) take their lease a moment after they report ready; the row needs all of them leased. */
export async function untilLeasesHeld(redisUrl: string, expected: number): Promise<number> {
  const redis = new Redis(redisUrl, { lazyConnect: true });
  await redis.connect();
  try {
    const deadline = Date.now() + 10_000;
    let live = 0;
    while (Date.now() < deadline) {
      const [seconds, microseconds] = await redis.time();
      const now = Number(seconds) * 1_000 + Number(microseconds) / 1_000;
      const leases = await redis.hgetall(createKeyNames().leases);
      // Each value is "<last applied sequence>:<lease end, Redis clock ms>".
      live = Object.values(leases).filter((value) => Number(value.split(':')[1]) > now).length;
      if (live === expected) return live;
      await delay(100);
    }
    throw new Error(`expected ${expected} live replica leases in Redis, found ${live}`);
  } finally {
    redis.disconnect();
  }
}

export async function expectActivity(clients: readonly UnaryClient[], tokens: readonly IssueResponse[], active: boolean): Promise<void> {
  const pairs = clients.flatMap((client, replica) => tokens.map((token) => ({ client, replica, token })));
  await inParallel(pairs, async ({ client, replica, token }) => {
    const answer = await client.call(introspectPath, IntrospectRequestSchema, IntrospectResponseSchema, create(IntrospectRequestSchema, { token: token.token }));
    if (answer.active !== active) throw new Error(`token ${token.tokenId} introspected active: ${answer.active} on replica ${replica + 1}, expected ${active}`);
  });
}

export async function inParallel<Item, Result>(items: readonly Item[], work: (item: Item) => Promise<Result>): Promise<Result[]> {
  const results: Result[] = new Array<Result>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(setUpConcurrency, items.length) }, worker));
  return results;
}
