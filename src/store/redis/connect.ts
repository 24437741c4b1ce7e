// Builds the ioredis client for a parsed Redis URL, set up to fail fast and
// to heal by itself:
// - no offline queue and no retries per request: while Redis is unreachable a
//   call rejects at once instead of waiting in a queue nobody bounds;
// - a command timeout: a Redis that accepts but never answers (paused, or a
//   partition) costs a caller at most that long;
// - reconnection forever, with capped exponential backoff, so the store comes
//   back on its own when Redis does.

import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from './connection-url.js';
import { SCRIPTS, type ScriptCommands } from './scripts.js';

export type RedisClient = (Redis | Cluster) & ScriptCommands;

export interface ClientSettings {
  commandTimeoutMs: number;
  reconnectMaxDelayMs: number;
}

export function createRedisClient(target: RedisTarget, settings: ClientSettings): RedisClient {
  const reconnectDelay = (attempt: number) =>
    Math.min(50 * 2 ** Math.min(attempt, 16), settings.reconnectMaxDelayMs) + Math.floor(Math.random() * 50);
  const common = {
    username: target.username,
    password: target.password,
    commandTimeout: settings.commandTimeoutMs,
    connectTimeout: Math.max(settings.commandTimeoutMs, 1000),
    // A connection that has owed replies this long is dropped and remade: a
    // server gone without a reset (host lost, moved by failover) would
    // otherwise hold it until TCP keep-alive gives up, many minutes later.
    socketTimeout: Math.max(5 * settings.commandTimeoutMs, 5000),
    maxRetriesPerRequest: 0,
    // A command whose connection broke may or may not have run; the caller
    // decides whether to try again, not the driver behind its back.
    autoResendUnfulfilledCommands: false,
  } satisfies RedisOptions;

  switch (target.kind) {
    case 'standalone':
      return new Redis({
        ...common,
        host: target.address.host,
        port: target.address.port,
        db: target.db,
        tls: target.tls ? { servername: target.address.host } : undefined,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        retryStrategy: reconnectDelay,
        scripts: SCRIPTS,
      }) as RedisClient;
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: target.sentinels,
        name: target.masterName,
        db: target.db,
        sentinelCommandTimeout: settings.commandTimeoutMs,
        // Follow Sentinel's +switch-master announcements: otherwise the client
        // keeps writing to a demoted primary until its connection breaks.
        failoverDetector: true,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        retryStrategy: reconnectDelay,
        sentinelRetryStrategy: reconnectDelay,
        scripts: SCRIPTS,
      }) as RedisClient;
    case 'cluster':
      return new Cluster(target.nodes, {
        redisOptions: common,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: reconnectDelay,
        scripts: SCRIPTS,
      }) as RedisClient;
  }
}

/** A second connection like client, for work that blocks it (stream reads). */
export function duplicateClient(client: RedisClient): RedisClient {
  // Not dead code: Cluster's and Redis's duplicate() have signatures TypeScript
  // cannot call through their union, so each branch narrows client to one.
  return (client instanceof Cluster ? client.duplicate() : client.duplicate()) as RedisClient;
}

/**
 * WAIT for the writes made so far on the connection that serves key: on a
 * Cluster that is the primary owning key's slot (a keyless WAIT would go to
 * any node and prove nothing). Resolves with the replicas that acknowledged.
 */
export async function waitForReplicas(client: RedisClient, key: string, replicas: number, timeoutMs: number): Promise<number> {
  if (!(client instanceof Cluster)) return client.wait(replicas, timeoutMs);
  const owner = client.slots[calculateSlot(key)]?.[0];
  const node = client.nodes('master').find((candidate) => `${candidate.options.host}:${candidate.options.port}` === owner);
  if (node === undefined) throw new Error('no connection to the primary that owns the revocation slot');
  return node.wait(replicas, timeoutMs);
}

/**
 * Reconnects a client that ioredis gave up on while it was not being closed.
 * Its reconnection is meant to go on forever, but a connection attempt cut
 * short under it (through Sentinel: a +switch-master arriving while the new
 * primary is being looked up) ends the client for good, and the store would
 * answer UNAVAILABLE until restarted.
 */
export function keepConnecting(client: RedisClient, settings: ClientSettings, closing: () => boolean): void {
  client.on('end', () => {
    if (closing()) return;
    setTimeout(() => {
      if (!closing() && client.status === 'end') client.connect().catch(() => {});
    }, Math.min(50, settings.reconnectMaxDelayMs)).unref();
  });
}
