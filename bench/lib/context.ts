// What rows share: the settings, a scratch directory, and the processes under
// test. Each process starts the first time a row asks for it, so a row that needs
// something new adds a getter here and nothing starts that no row uses.
import { create } from '@bufbuild/protobuf';
import type { RedisServerHandle } from '../../test/support/redis-server.js';
import { startRedis } from '../../test/support/redis-server.js';
import {
  IssueResponseSchema,
  IssueRequestSchema,
  RotateKeysRequestSchema,
  RotateKeysResponseSchema,
  TokenFormat,
  type IssueResponse,
} from '../../src/gen/tally/v1/token_service_pb.js';
import { startBareGrpcServer, type BareGrpcTarget } from '../targets/bare-grpc.js';
import { startOidcProvider, type OidcProviderTarget } from '../targets/oidc-provider.js';
import { startOtlpSink, type OtlpSink } from '../targets/otlp-sink.js';
import { buildTally, newMasterKey, startTally, type TallyTarget } from '../targets/tally.js';
import { benchIssueRequest, issuePath, type BenchJwtAlgorithm } from './fixtures.js';
import { callUnary } from './grpc-client.js';
import type { LoadSettings } from './h2load.js';
import type { Measurement, Row } from './row.js';
import { scrapeAnsweredCalls } from './tally-metrics.js';

export interface BenchContext {
  readonly projectRoot: string;
  readonly scratchDirectory: string;
  readonly settings: LoadSettings;
  redis(): Promise<RedisServerHandle>;
  bareGrpcServer(): Promise<BareGrpcTarget>;
  /** Tally against the bench's Redis, with TALLY_CACHE_SIZE=0. */
  tally(): Promise<TallyTarget>;
  /** Tally against the same Redis with the default cache and lease: a leased replica. */
  cachedTally(): Promise<TallyTarget>;
  /**
   * cachedTally's settings with tracing on: every call sampled (OTEL_TRACES_SAMPLER=always_on),
   * spans exported as OTLP/protobuf to otlpSink(). A leased replica too, so a row that uses it
   * stops it when done: a Revoke waits for every leased replica.
   */
  tracedTally(): Promise<TallyTarget>;
  /** The OTLP endpoint tracedTally() exports to. */
  otlpSink(): Promise<OtlpSink>;
  /** Stops a Tally process before the run ends, its answered calls counted first (for --profile). */
  stopTally(target: TallyTarget): Promise<void>;
  /**
   * Three leased replicas on the same Redis, cachedTally() first. Revoke waits for each,
   * so the cache-off Tally (which holds no lease) does not change what they measure.
   */
  leasedReplicas(): Promise<readonly [TallyTarget, TallyTarget, TallyTarget]>;
  /** An opaque token minted through Tally's gRPC Issue. */
  opaqueToken(): Promise<IssueResponse>;
  /** A JWT minted through Tally's gRPC Issue: with the default algorithm (EdDSA), or the one named. */
  jwtToken(algorithm?: BenchJwtAlgorithm): Promise<IssueResponse>;
  /** Makes sure the shared key ring has an active key of the algorithm (RotateKeys once); the default stays EdDSA. */
  signingKey(algorithm: BenchJwtAlgorithm): Promise<void>;
  /** node-oidc-provider with the bench's Redis adapter on the same Redis. */
  oidcProvider(): Promise<OidcProviderTarget>;
  /**
   * A row's measurement from this run: measured once, then reused. Rows that derive their
   * load from another row (latency at half the peak) ask for it here.
   */
  measure(row: Row): Promise<Measurement>;
  /** How each started process was run, for the report. */
  readonly startedWith: Map<string, string>;
  /** Profiled processes by process id, so a CPU profile (named by pid) can say whose it is. */
  readonly profiledProcesses: Map<number, ProfiledProcess>;
  /** Stops what was started, in reverse order. */
  close(): Promise<void>;
}

export interface ProfiledProcess {
  readonly label: string;
  /** Calls the process answered in its life, once it has stopped; undefined when it cannot tell. */
  calls(): number | undefined;
}

export interface BenchContextOptions {
  readonly projectRoot: string;
  readonly scratchDirectory: string;
  readonly settings: LoadSettings;
  /** Set: the bare server and every Tally process write a V8 CPU profile (node --cpu-prof) here when they stop. */
  readonly profileDirectory?: string;
}

export function createBenchContext(options: BenchContextOptions): BenchContext {
  const { projectRoot, scratchDirectory, settings, profileDirectory } = options;
  const stops: Array<() => Promise<void>> = [];
  const startedWith = new Map<string, string>();
  const profiledProcesses = new Map<number, ProfiledProcess>();
  const masterKey = newMasterKey();
  const nodeArguments = profileDirectory === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDirectory}`];

  const redis = once(async () => {
    const handle = await startRedis();
    stops.push(() => handle.stop());
    startedWith.set('redis', `redis-server on ${handle.url}, --save "" --appendonly no`);
    return handle;
  });
  const bareGrpcServer = once(async () => {
    // Profiled too, so Tally's cost per call can be set beside the baseline's.
    const target = await startBareGrpcServer(projectRoot, scratchDirectory, nodeArguments);
    stops.push(() => target.process.stop());
    if (target.process.child.pid !== undefined) {
      const calls = (): number | undefined => {
        const match = target.process.output().match(/answered (\d+) calls/);
        return match === null ? undefined : Number(match[1]);
      };
      profiledProcesses.set(target.process.child.pid, { label: 'bare grpc-js', calls });
    }
    startedWith.set('bare grpc-js', `node --import tsx bench/targets/bare-grpc-server.ts (on ${target.grpcAddress})`);
    return target;
  });
  const tallyEntry = once(() => buildTally(projectRoot, scratchDirectory));
  const tallyStops = new Map<TallyTarget, () => Promise<void>>();
  const startTallyProcess = async (label: string, environment: Record<string, string | undefined>, description: string): Promise<TallyTarget> => {
    const [{ url }, { entry, note }] = await Promise.all([redis(), tallyEntry()]);
    const target = await startTally({ projectRoot, redisUrl: url, scratchDirectory, masterKey, environment, nodeArguments, label }, entry);
    // Read just before it stops, so the count covers every row the process served.
    let answeredCalls: number | undefined;
    const stop = once(async () => {
      answeredCalls = await scrapeAnsweredCalls(target.httpOrigin);
      await target.process.stop();
    });
    stops.push(stop);
    tallyStops.set(target, stop);
    // setpriv execs the command, so the process id is node's own.
    if (target.process.child.pid !== undefined) profiledProcesses.set(target.process.child.pid, { label, calls: () => answeredCalls });
    startedWith.set(
      label,
      `${target.commandLine} (${note}; ${description}; default log level, to a file; gRPC ${target.grpcAddress}, HTTP ${target.httpOrigin})`,
    );
    return target;
  };
  const tally = once(() => startTallyProcess('tally-cache-off', {}, 'cache off'));
  const cachedTally = once(() => startTallyProcess('tally-cached', { TALLY_CACHE_SIZE: undefined }, 'default cache and lease'));
  const otlpSink = once(async () => {
    const sink = await startOtlpSink();
    stops.push(() => sink.close());
    startedWith.set('otlp sink', `an OTLP/HTTP endpoint in the bench process that reads, counts and drops every export (bench/targets/otlp-sink.ts, on ${sink.endpoint})`);
    return sink;
  });
  const tracedTally = once(async () => {
    const sink = await otlpSink();
    const tracing = { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, OTEL_TRACES_SAMPLER: 'always_on' };
    return startTallyProcess('tally-traced', { TALLY_CACHE_SIZE: undefined, ...tracing }, 'default cache and lease, tracing on');
  });
  const leasedReplicas = once(async () => {
    const first = await cachedTally();
    const [second, third] = await Promise.all([
      startTallyProcess('tally-replica-2', { TALLY_CACHE_SIZE: undefined }, 'default cache and lease'),
      startTallyProcess('tally-replica-3', { TALLY_CACHE_SIZE: undefined }, 'default cache and lease'),
    ]);
    return [first, second, third] as const;
  });
  const mlDsaKey = once(async () => {
    const { grpcAddress } = await tally();
    // Beside the default key, which stays the default: the EdDSA rows are unchanged by it.
    await callUnary(grpcAddress, '/tally.v1.TokenService/RotateKeys', RotateKeysRequestSchema, RotateKeysResponseSchema, create(RotateKeysRequestSchema, { algorithm: 'ML-DSA-65' }));
  });
  const signingKey = async (algorithm: BenchJwtAlgorithm) => {
    if (algorithm === 'ML-DSA-65') await mlDsaKey();
  };
  const issue = (format: TokenFormat, algorithm?: BenchJwtAlgorithm) =>
    once(async () => {
      // Any replica will do: tokens live in Redis and the key ring is shared.
      const { grpcAddress } = await tally();
      if (algorithm !== undefined) await signingKey(algorithm);
      const issued = await callUnary(grpcAddress, issuePath, IssueRequestSchema, IssueResponseSchema, benchIssueRequest(format, algorithm));
      if (issued.token === '') throw new Error('Issue answered without a token');
      return issued;
    });
  const oidcProvider = once(async () => {
    const { url } = await redis();
    const target = await startOidcProvider(projectRoot, scratchDirectory, url);
    stops.push(() => target.process.stop());
    startedWith.set('oidc-provider', `${target.commandLine} (issuer ${target.issuer}; Redis adapter bench/targets/oidc-provider-redis-adapter.ts on ${url})`);
    return target;
  });
  const measurements = new Map<string, Promise<Measurement>>();

  return {
    projectRoot,
    scratchDirectory,
    settings,
    redis,
    bareGrpcServer,
    tally,
    cachedTally,
    tracedTally,
    otlpSink,
    stopTally: (target) => tallyStops.get(target)?.() ?? Promise.resolve(),
    leasedReplicas,
    opaqueToken: issue(TokenFormat.OPAQUE),
    jwtToken: (() => {
      const byAlgorithm = { default: issue(TokenFormat.JWT), 'ML-DSA-65': issue(TokenFormat.JWT, 'ML-DSA-65') };
      return (algorithm?: BenchJwtAlgorithm) => (algorithm === 'ML-DSA-65' ? byAlgorithm['ML-DSA-65']() : byAlgorithm.default());
    })(),
    signingKey,
    oidcProvider,
    measure(row) {
      let measurement = measurements.get(row.name);
      if (measurement === undefined) {
        measurement = row.measure(this);
        measurements.set(row.name, measurement);
      }
      return measurement;
    },
    startedWith,
    profiledProcesses,
    async close() {
      for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.warn(`while stopping: ${String(error)}`));
    },
  };
}

function once<T>(start: () => Promise<T>): () => Promise<T> {
  let started: Promise<T> | undefined;
  return () => (started ??= start());
}
