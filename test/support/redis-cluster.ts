// Starts a real Redis Cluster for tests: one private redis-server per node
// (through startRedis, so each has its own port, directory and exit cleanup),
// joined by `redis-cli --cluster create` the way an operator would do it.
//
// The cluster is ready only when every node says cluster_state:ok and sees all
// 16384 slots assigned: before that, a client may be sent MOVED/CLUSTERDOWN
// answers that a test would read as a store failure.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseInfo, withNodeClient } from './redis-node-client.js';
import { startRedis, type RedisServerHandle } from './redis-server.js';

export const REDIS_CLI_PATH = process.env.TALLY_TEST_REDIS_CLI ?? '/usr/bin/redis-cli';

const HASH_SLOT_COUNT = 16_384;
const runFile = promisify(execFile);

export interface StartRedisClusterOptions {
  /** At least 3: redis-cli refuses to create a cluster with fewer primaries. */
  primaries: number;
  /** Replicas per primary; 0 keeps start-up lean when no failover is tested. */
  replicasPerPrimary?: 0 | 1;
  /** How long a node may be unreachable before the others mark it failing. */
  nodeTimeoutMs?: number;
  /** The whole start-up (servers, join, slot coverage) must finish within this. */
  startTimeoutMs?: number;
}

export interface RedisClusterHandle {
  /** redis+cluster://127.0.0.1:p1,127.0.0.1:p2,... listing every node. */
  readonly url: string;
  /** Primaries first, in the order given to redis-cli, then replicas. */
  readonly nodes: readonly RedisServerHandle[];
  /**
   * Kills every node. Not a graceful SIGTERM: a node that lost its primary
   * mid-teardown may refuse to shut down while it writes its first AOF, and a
   * test cluster has nothing worth saving. The directories go at process exit.
   */
  stop(): Promise<void>;
}

/** Why the node is not yet a healthy member of a fully covered cluster, or undefined if it is. */
async function clusterProblem(node: RedisServerHandle, replicasPerPrimary: number): Promise<string | undefined> {
  return withNodeClient(node.port, async (client) => {
    const info = parseInfo(String(await client.call('CLUSTER', 'INFO')));
    if (info.get('cluster_state') !== 'ok') return `cluster_state:${info.get('cluster_state') ?? '?'}`;
    const assigned = Number(info.get('cluster_slots_assigned'));
    const healthy = Number(info.get('cluster_slots_ok'));
    if (assigned !== HASH_SLOT_COUNT || healthy !== HASH_SLOT_COUNT) {
      return `slots assigned ${assigned}, ok ${healthy} of ${HASH_SLOT_COUNT}`;
    }
    const replication = parseInfo(await client.info('replication'));
    if (replication.get('role') === 'slave' && replication.get('master_link_status') !== 'up') {
      return 'replica not yet in sync with its primary';
    }
    if (replication.get('role') === 'master' && Number(replication.get('connected_slaves')) < replicasPerPrimary) {
      return `${replication.get('connected_slaves') ?? 0} of ${replicasPerPrimary} replicas connected`;
    }
    return undefined;
  });
}

export async function startRedisCluster(options: StartRedisClusterOptions): Promise<RedisClusterHandle> {
  const replicasPerPrimary = options.replicasPerPrimary ?? 0;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2000;
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  if (!Number.isInteger(options.primaries) || options.primaries < 3) {
    throw new RangeError('a Redis Cluster needs at least 3 primaries');
  }
  const deadline = performance.now() + startTimeoutMs;
  const nodeCount = options.primaries * (1 + replicasPerPrimary);

  const started = await Promise.allSettled(
    Array.from({ length: nodeCount }, () =>
      startRedis({
        appendonly: true,
        startTimeoutMs,
        args: [
          '--cluster-enabled', 'yes',
          // Relative to the node's own directory, where redis-server runs.
          '--cluster-config-file', 'nodes.conf',
          '--cluster-node-timeout', String(nodeTimeoutMs),
        ],
      }),
    ),
  );
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.kill()));
  };

  try {
    const failure = started.find((result) => result.status === 'rejected');
    if (failure !== undefined) throw failure.reason;

    // redis-cli makes the first `primaries` addresses primaries and gives each
    // its replicas from the rest; it waits for the join itself, but not for
    // slot coverage to reach every node.
    await runFile(
      REDIS_CLI_PATH,
      [
        '--cluster', 'create',
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        '--cluster-replicas', String(replicasPerPrimary),
        '--cluster-yes',
      ],
      { timeout: Math.max(1000, Math.ceil(deadline - performance.now())), killSignal: 'SIGKILL' },
    ).catch((error: unknown) => {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      throw new Error(`redis-cli --cluster create failed:\n${stdout.slice(-2000)}${stderr.slice(-2000)}`, {
        cause: error,
      });
    });

    for (;;) {
      const problems = await Promise.all(
        nodes.map(async (node) => {
          const problem = await clusterProblem(node, replicasPerPrimary).catch((error: unknown) => String(error));
          return problem === undefined ? undefined : `node ${node.port}: ${problem}`;
        }),
      );
      const remaining = problems.filter((problem) => problem !== undefined);
      if (remaining.length === 0) break;
      if (performance.now() > deadline) {
        throw new Error(`Redis Cluster not ready within ${startTimeoutMs} ms: ${remaining.join('; ')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    url: `redis+cluster://${nodes.map((node) => `127.0.0.1:${node.port}`).join(',')}`,
    nodes,
    stop,
  };
}

