// What rows share: the settings, a scratch directory, and the processes under
// test. Each process starts the first time a row asks for it, so a row that needs
// something new adds a getter here and nothing starts that no row uses.
import type { RedisServerHandle } from '../../test/support/redis-server.js';
import { startRedis } from '../../test/support/redis-server.js';
import { IssueResponseSchema, IssueRequestSchema, TokenFormat, type IssueResponse } from '../../src/gen/tally/v1/token_service_pb.js';
import { startBareGrpcServer, type BareGrpcTarget } from '../targets/bare-grpc.js';
import { buildTally, startTally, type TallyTarget } from '../targets/tally.js';
import { benchIssueRequest, issuePath } from './fixtures.js';
import { callUnary } from './grpc-client.js';
import type { LoadSettings } from './h2load.js';

export interface BenchContext {
  readonly projectRoot: string;
  readonly scratchDirectory: string;
  readonly settings: LoadSettings;
  redis(): Promise<RedisServerHandle>;
  bareGrpcServer(): Promise<BareGrpcTarget>;
  /** Tally against the bench's Redis, with TALLY_CACHE_SIZE=0. */
  tally(): Promise<TallyTarget>;
  /** An opaque token minted through Tally's gRPC Issue. */
  opaqueToken(): Promise<IssueResponse>;
  /** How each started process was run, for the report. */
  readonly startedWith: Map<string, string>;
  /** Stops what was started, in reverse order. */
  close(): Promise<void>;
}

export function createBenchContext(projectRoot: string, scratchDirectory: string, settings: LoadSettings): BenchContext {
  const stops: Array<() => Promise<void>> = [];
  const startedWith = new Map<string, string>();

  const redis = once(async () => {
    const handle = await startRedis();
    stops.push(() => handle.stop());
    startedWith.set('redis', `redis-server on ${handle.url}, --save "" --appendonly no`);
    return handle;
  });
  const bareGrpcServer = once(async () => {
    const target = await startBareGrpcServer(projectRoot, scratchDirectory);
    stops.push(() => target.process.stop());
    startedWith.set('bare grpc-js', `node --import tsx bench/targets/bare-grpc-server.ts (on ${target.grpcAddress})`);
    return target;
  });
  const tallyEntry = once(() => buildTally(projectRoot, scratchDirectory));
  const tally = once(async () => {
    const [{ url }, { entry, note }] = await Promise.all([redis(), tallyEntry()]);
    const target = await startTally({ projectRoot, redisUrl: url, scratchDirectory }, entry);
    stops.push(() => target.process.stop());
    startedWith.set('tally', `${target.commandLine} (${note}; default log level, one line per call, to a file; gRPC ${target.grpcAddress}, HTTP ${target.httpOrigin})`);
    return target;
  });
  const opaqueToken = once(async () => {
    const { grpcAddress } = await tally();
    const issued = await callUnary(grpcAddress, issuePath, IssueRequestSchema, IssueResponseSchema, benchIssueRequest(TokenFormat.OPAQUE));
    if (issued.token === '') throw new Error('Issue answered without a token');
    return issued;
  });

  return {
    projectRoot,
    scratchDirectory,
    settings,
    redis,
    bareGrpcServer,
    tally,
    opaqueToken,
    startedWith,
    async close() {
      for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.warn(`while stopping: ${String(error)}`));
    },
  };
}

function once<T>(start: () => Promise<T>): () => Promise<T> {
  let started: Promise<T> | undefined;
  return () => (started ??= start());
}
