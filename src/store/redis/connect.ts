// Builds the ioredis client for a parsed Redis URL, set up to fail fast and
// to heal by itself:
// - no offline queue and no retries per request: while Redis is unreachable a
//   call rejects at once instead of waiting in a queue nobody bounds;
// - a command timeout: a Redis that accepts but never answers (paused, or a
//   partition) costs a caller at most that long;
// - reconnection forever, with capped exponential backoff, so the store comes
//   back on its own when Redis does.

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
  return (client instanceof Cluster ? client.duplicate() : client.duplicate()) as RedisClient;
}
