// Starts a real Sentinel deployment for tests: a primary, one replica, and one
// or three Sentinels watching them, every process a private redis-server from
// startRedis. Both data nodes keep an AOF fsynced on every write, as Tally's
// store asks of production Redis.
//
// Each step waits for the state the next one depends on, so a test never races
// the topology: the replica is in sync before Sentinels start, and every
// Sentinel knows the replica (and its peers) before the handle is returned,
// since SENTINEL FAILOVER refuses to run without a replica it can promote.

import { parseInfo, withNodeClient } from './redis-node-client.js';
import { startRedis, type RedisServerHandle } from './redis-server.js';

export const SENTINEL_MASTER_NAME = 'tally-primary';

/**
 * Either data node may be primary. Redis waits 5 s by default before a
 * diskless full sync in case more replicas ask; with one replica that is only
 * a delay on start-up and after every failover.
 */
const DATA_NODE_ARGS = ['--repl-diskless-sync-delay', '0'];

export interface StartRedisSentinelOptions {
  /** One is enough to force failovers; three also agree among themselves, as in production. */
  sentinels?: 1 | 3;
  /** How long the primary may stay silent before a Sentinel calls it down. */
  downAfterMs?: number;
  /** Sentinel's failover-timeout; also how long a failed failover blocks the next one. */
  failoverTimeoutMs?: number;
  /** Bounds start-up, and separately each failover(). */
  timeoutMs?: number;
}

export interface RedisSentinelHandle {
  /** redis+sentinel://127.0.0.1:s1,.../tally-primary */
  readonly url: string;
  /** The data node that is the primary now; the two swap on failover(). */
  readonly primary: RedisServerHandle;
  /** The data node that is the replica now, in sync with primary. */
  readonly replica: RedisServerHandle;
  readonly sentinels: readonly RedisServerHandle[];
  /**
   * Forces a failover through SENTINEL FAILOVER. Resolves once every Sentinel
   * names the former replica as primary, it accepts writes, and the former
   * primary replicates from it in sync; Sentinel waits about 8 s before it
   * demotes a former primary, so a failover takes some 10 s.
   */
  failover(): Promise<void>;
  /** Kills every process; nothing here is worth a graceful shutdown. */
  stop(): Promise<void>;
}

/** SENTINEL REPLICAS / SENTINELS answer flat [name, value, name, value, …] lists. */
function parseFlatRecords(reply: unknown): Array<Map<string, string>> {
  if (!Array.isArray(reply)) return [];
  return reply.map((entry: unknown) => {
    const fields = new Map<string, string>();
    if (Array.isArray(entry)) {
      for (let index = 0; index + 1 < entry.length; index += 2) fields.set(String(entry[index]), String(entry[index + 1]));
    }
    return fields;
  });
}

/** Polls `problem` until it answers undefined (ready), or throws its last answer at the deadline. */
async function waitFor(what: string, deadline: number, problem: () => Promise<string | undefined>): Promise<void> {
  for (;;) {
    const found = await problem().catch((error: unknown) => String(error));
    if (found === undefined) return;
    if (performance.now() > deadline) throw new Error(`${what}: still ${found}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function replicaProblem(replica: RedisServerHandle, primary: RedisServerHandle): Promise<string | undefined> {
  const info = parseInfo(await withNodeClient(replica.port, (client) => client.info('replication')));
  if (info.get('role') !== 'slave') return `node ${replica.port} has role ${info.get('role') ?? '?'}`;
  if (info.get('master_port') !== String(primary.port)) {
    return `node ${replica.port} replicates from ${info.get('master_port') ?? '?'}, not ${primary.port}`;
  }
  if (info.get('master_link_status') !== 'up') return `node ${replica.port} master_link_status:${info.get('master_link_status') ?? '?'}`;
  return undefined;
}

/** What keeps one Sentinel from being able to fail primary over to replica, or undefined. */
async function sentinelProblem(
  sentinel: RedisServerHandle,
  primary: RedisServerHandle,
  replica: RedisServerHandle,
  peerCount: number,
): Promise<string | undefined> {
  return withNodeClient(sentinel.port, async (client) => {
    const address = (await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER_NAME)) as string[] | null;
    if (address?.[1] !== String(primary.port)) {
      return `sentinel ${sentinel.port} names ${address?.join(':') ?? 'no'} primary, not ${primary.port}`;
    }
    const replicas = parseFlatRecords(await client.call('SENTINEL', 'REPLICAS', SENTINEL_MASTER_NAME));
    const known = replicas.find((fields) => fields.get('port') === String(replica.port));
    // Only the flags: Sentinel refreshes a replica's link status every 10 s,
    // so replicaProblem asks the replica itself whether it is in sync.
    if (known?.get('flags') !== 'slave') {
      return `sentinel ${sentinel.port} sees replica ${replica.port} as ${known?.get('flags') ?? 'unknown'}`;
    }
    const peers = parseFlatRecords(await client.call('SENTINEL', 'SENTINELS', SENTINEL_MASTER_NAME));
    if (peers.length < peerCount) return `sentinel ${sentinel.port} knows ${peers.length} of ${peerCount} peers`;
    return undefined;
  });
}

export async function startRedisSentinel(options: StartRedisSentinelOptions = {}): Promise<RedisSentinelHandle> {
  const sentinelCount = options.sentinels ?? 1;
  const downAfterMs = options.downAfterMs ?? 1000;
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 5000;
  const timeoutMs = options.timeoutMs ?? 20_000;
  // A majority, so that with three Sentinels one alone cannot declare the primary down.
  const quorum = Math.floor(sentinelCount / 2) + 1;
  const deadline = performance.now() + timeoutMs;
  const started: RedisServerHandle[] = [];
  const stop = async () => {
    await Promise.all(started.map((server) => server.kill()));
  };

  let primary: RedisServerHandle;
  let replica: RedisServerHandle;
  const sentinels: RedisServerHandle[] = [];
  try {
    primary = await startRedis({ appendonly: true, startTimeoutMs: timeoutMs, args: DATA_NODE_ARGS });
    started.push(primary);
    replica = await startRedis({
      appendonly: true,
      startTimeoutMs: timeoutMs,
      args: [...DATA_NODE_ARGS, '--replicaof', '127.0.0.1', String(primary.port)],
    });
    started.push(replica);
    const firstPrimary = primary;
    const firstReplica = replica;
    await waitFor('replica in sync', deadline, () => replicaProblem(firstReplica, firstPrimary));

    const launched = await Promise.allSettled(
      Array.from({ length: sentinelCount }, () => startRedis({ mode: 'sentinel', startTimeoutMs: timeoutMs })),
    );
    for (const result of launched) if (result.status === 'fulfilled') sentinels.push(result.value);
    started.push(...sentinels);
    const failure = launched.find((result) => result.status === 'rejected');
    if (failure !== undefined) throw failure.reason;

    // Told at run time rather than in sentinel.conf: Sentinel writes what it
    // is told back into its own config file, so a restart keeps it either way.
    await Promise.all(
      sentinels.map((sentinel) =>
        withNodeClient(sentinel.port, async (client) => {
          await client.call('SENTINEL', 'MONITOR', SENTINEL_MASTER_NAME, '127.0.0.1', String(firstPrimary.port), String(quorum));
          await client.call(
            'SENTINEL', 'SET', SENTINEL_MASTER_NAME,
            'down-after-milliseconds', String(downAfterMs),
            'failover-timeout', String(failoverTimeoutMs),
          );
        }),
      ),
    );
    await Promise.all(
      sentinels.map((sentinel) =>
        waitFor('sentinel ready', deadline, async () =>
          (await replicaProblem(firstReplica, firstPrimary)) ??
          sentinelProblem(sentinel, firstPrimary, firstReplica, sentinelCount - 1),
        ),
      ),
    );
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    url: `redis+sentinel://${sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`).join(',')}/${SENTINEL_MASTER_NAME}`,
    get primary() {
      return primary;
    },
    get replica() {
      return replica;
    },
    sentinels,
    async failover() {
      const failoverDeadline = performance.now() + timeoutMs;
      const [former, promoted] = [primary, replica];
      const first = sentinels[0];
      if (first === undefined) throw new Error('no Sentinel is running');
      // Every Sentinel must see a replica it may promote; a Sentinel learns
      // of a replica's state from INFO it asks for only every 10 s.
      await Promise.all(
        sentinels.map((sentinel) =>
          waitFor('replica ready for failover', failoverDeadline, async () =>
            (await replicaProblem(promoted, former)) ?? sentinelProblem(sentinel, former, promoted, sentinels.length - 1),
          ),
        ),
      );
      await withNodeClient(first.port, (client) => client.call('SENTINEL', 'FAILOVER', SENTINEL_MASTER_NAME));
      await waitFor('failover', failoverDeadline, async () => {
        for (const sentinel of sentinels) {
          const address = await withNodeClient(sentinel.port, (client) =>
            client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER_NAME),
          );
          if (!Array.isArray(address) || address[1] !== String(promoted.port)) {
            return `sentinel ${sentinel.port} names ${Array.isArray(address) ? address.join(':') : 'no'} primary`;
          }
        }
        // A write is the proof of promotion a client cares about: a replica answers READONLY.
        await withNodeClient(promoted.port, (client) => client.set('tally-test:failover-probe', String(Date.now())));
        // Until Sentinel demotes it (some seconds after the switch, dropping
        // its clients), the former primary still takes writes from clients
        // connected before; a test must not mistake those for recovery.
        return replicaProblem(former, promoted);
      });
      primary = promoted;
      replica = former;
    },
    stop,
  };
}
