import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { IssueRequestSchema, IssueResponseSchema, RevokeRequestSchema, RevokeResponseSchema, TokenFormat } from '../../src/gen/tally/v1/token_service_pb.js';
import { startProcess } from '../lib/child-processes.js';
import { benchIssueRequest, issuePath, revokePath } from '../lib/fixtures.js';
import { createUnaryClient, type UnaryClient } from '../lib/grpc-client.js';
import { percentile } from '../lib/percentiles.js';
import type { Measurement, Row } from '../lib/row.js';
import { expectActivity, inParallel, untilLeasesHeld } from './tally-revoke-leased-replicas.js';

const revocations = 1_000;
const viewClients = 10;

interface ClientsResult {
  readonly clients: number;
  readonly tokens: number;
  readonly hitsBefore: number;
  readonly activeAfter: number;
  readonly breaksDuringRevokes: number;
  readonly freshAfter: number;
}

export const tallyRevokeViewClients: Row = {
  name: `Tally gRPC Revoke by token_id, 3 leased replicas and ${viewClients} clients with local views`,
  description:
    `${revocations.toLocaleString('en-US')} sequential Revoke calls (by token_id, one gRPC channel) on one of three leased Tally replicas, ` +
    `while ${viewClients} tally/client local views (one process, watching through the three replicas in turn) hold leases too and have every token cached, ` +
    'so every Revoke waits until all three replicas and all ten clients have applied its event; p50/p99 the latency of one Revoke',
  async measure(context): Promise<Measurement> {
    const replicas = await context.leasedReplicas();
    const { url } = await context.redis();
    const clients = replicas.map((replica) => createUnaryClient(replica.grpcAddress));
    const [revoking] = clients as [UnaryClient, ...UnaryClient[]];
    const tokensPath = join(context.scratchDirectory, 'view-clients-tokens.json');
    const goPath = join(context.scratchDirectory, 'view-clients-go');
    const holders = startProcess(
      'view clients',
      process.execPath,
      ['--import', 'tsx', 'bench/targets/view-clients.ts', String(viewClients), tokensPath, goPath, ...replicas.map((replica) => replica.grpcAddress)],
      { cwd: context.projectRoot, logPath: join(context.scratchDirectory, 'view-clients.log') },
    );
    try {
      await holders.waitForOutput(/views fresh/, 30_000);
      const tokens = await inParallel(Array.from({ length: revocations }, (_, index) => index), () =>
        revoking.call(issuePath, IssueRequestSchema, IssueResponseSchema, benchIssueRequest(TokenFormat.OPAQUE)),
      );
      // Opaque tokens are secrets; the file lives in the run's private scratch directory and goes with it.
      writeFileSync(`${tokensPath}.part`, JSON.stringify(tokens.map((token) => token.token)), { mode: 0o600 });
      // Whole or not at all: the clients' process reads it as soon as it appears.
      renameSync(`${tokensPath}.part`, tokensPath);
      const cached = await holders.waitForOutput(/cached (\d+)/, 120_000);
      const liveLeases = await untilLeasesHeld(url, replicas.length + viewClients);

      const milliseconds: number[] = [];
      const start = performance.now();
      for (const { tokenId } of tokens) {
        const before = performance.now();
        await revoking.call(revokePath, RevokeRequestSchema, RevokeResponseSchema, create(RevokeRequestSchema, { target: { case: 'tokenId', value: tokenId } }));
        milliseconds.push(performance.now() - before);
      }
      const elapsed = performance.now() - start;

      writeFileSync(goPath, '');
      const line = await holders.waitForOutput(/bench-result (.*)/, 120_000);
      const result = JSON.parse(line[1]!) as ClientsResult;
      if (result.activeAfter > 0) throw new Error(`${result.activeAfter} answers active from the clients after their Revoke returned`);
      // A view that broke during the revokes released its lease, and the revokes stopped waiting for it.
      if (result.breaksDuringRevokes > 0) throw new Error(`${result.breaksDuringRevokes} client views stopped watching during the revokes`);
      await expectActivity(clients, tokens, false);
      milliseconds.sort((a, b) => a - b);
      return {
        callsPerSecond: revocations / (elapsed / 1_000),
        p50Milliseconds: percentile(milliseconds, 0.5),
        p99Milliseconds: percentile(milliseconds, 0.99),
        requests: revocations,
        command: 'bench/rows/tally-revoke-view-clients.ts (a grpc-js client in the bench process; the views in bench/targets/view-clients.ts)',
        notes: [
          `${liveLeases} live leases in Redis before the revokes (3 replicas, ${viewClients} clients)`,
          `each client had every token cached (${cached[1]} answers from the caches before the revokes); after, all ${result.clients * result.tokens} client answers inactive, and every token inactive on all three replicas`,
          `no client view stopped watching during the revokes; p10 ${percentile(milliseconds, 0.1).toFixed(2)}, p90 ${percentile(milliseconds, 0.9).toFixed(2)}, max ${milliseconds[milliseconds.length - 1]!.toFixed(2)} ms`,
        ],
      };
    } finally {
      await holders.stop();
      for (const client of clients) client.close();
    }
  },
};
