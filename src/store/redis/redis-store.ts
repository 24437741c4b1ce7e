// The Redis store (standalone, Sentinel or Cluster, through ioredis).
//
// Durability. Revocations must survive a Redis restart, so Redis must run with:
//   appendonly yes          every write goes to the append-only file; RDB
//                           snapshots alone lose everything since the last one.
//   appendfsync always      Redis fsyncs the AOF before it answers a write, so
//                           a revocation that has returned is on disk. With the
//                           default `everysec`, a crash or power loss can drop
//                           the last second of acknowledged revocations.
//   maxmemory-policy noeviction
//                           revocation marks carry a TTL, so any volatile-* or
//                           allkeys-* policy may evict one under memory pressure
//                           and silently un-revoke tokens; noeviction makes
//                           writes fail (and Tally fail closed) instead.
// Replication is asynchronous: a Sentinel failover can lose the last
// acknowledged writes of the old master. These settings cover a restart of
// one server, which is what the contract promises.
//
// Failure. Every method either answers from Redis or rejects with
// StoreUnavailableError (driver error kept as its cause): there is no offline
// queue and every command has a timeout (see connect.ts), so an unreachable or
// stalled Redis is reported within commandTimeoutMs and never hangs a caller.

import { StoreUnavailableError } from '../../core/errors.js';
import type { Clock, Store } from '../../core/ports.js';
import { systemClock } from '../../core/system.js';
import type { KeyRingSnapshot, StoredKey, TokenRecord } from '../../core/types.js';
import { checkKeepForMs } from '../keep-for.js';
import { parseRedisUrl } from './connection-url.js';
import { createRedisClient } from './connect.js';
import { createKeyNames, DEFAULT_KEY_PREFIX } from './keys.js';

export interface RedisStoreOptions {
  /** redis://, rediss://, redis+sentinel:// or redis+cluster:// (see connection-url.ts). */
  url: string;
  /** How long one Redis command may take before the call fails. */
  commandTimeoutMs?: number;
  /** Prepended to every key, so several deployments (or tests) can share one Redis. */
  keyPrefix?: string;
  /** The longest wait between two reconnection attempts. */
  reconnectMaxDelayMs?: number;
  /** Expiry of token records is computed from this clock, not from Redis's. */
  clock?: Clock;
  /** Connection errors as ioredis reports them, for the log; they repeat while Redis is down. */
  onConnectionError?: (error: Error) => void;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
const DEFAULT_RECONNECT_MAX_DELAY_MS = 1000;

export function createRedisStore(options: RedisStoreOptions): Store {
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const clock = options.clock ?? systemClock;
  const keys = createKeyNames(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
  const client = createRedisClient(parseRedisUrl(options.url), {
    commandTimeoutMs,
    reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? DEFAULT_RECONNECT_MAX_DELAY_MS,
  });
  // Without a listener ioredis prints every reconnection failure to stderr.
  client.on('error', options.onConnectionError ?? (() => {}));
  let closed = false;
  let connecting: Promise<void> | undefined;

  /**
   * With no offline queue, a command sent while a connection is still being
   * set up would fail at once, so a store used right after creation, or right
   * after Redis came back, would fail for no reason. A connection attempt in
   * progress is awaited for up to the command timeout; anything else (backing
   * off between attempts, closed) fails at once.
   */
  function untilConnected(): Promise<void> {
    if (closed) return Promise.reject(new StoreUnavailableError('the token store is closed'));
    if (client.status !== 'connecting' && client.status !== 'connect') {
      return Promise.reject(new StoreUnavailableError());
    }
    connecting ??= new Promise<void>((resolve, reject) => {
      const settle = (error?: Error) => {
        client.off('ready', onReady);
        client.off('close', onClose);
        connecting = undefined;
        if (error === undefined) resolve();
        else reject(error);
      };
      const onReady = () => settle();
      const onClose = () => settle(new StoreUnavailableError());
      client.once('ready', onReady);
      client.once('close', onClose);
    });
    const attempt = connecting;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreUnavailableError()), commandTimeoutMs);
      attempt.then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  async function call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      if (client.status !== 'ready' || closed) await untilConnected();
      return await operation();
    } catch (error) {
      if (error instanceof StoreUnavailableError) throw error;
      throw new StoreUnavailableError(undefined, { cause: error });
    }
  }

  return {
    revocationSequence: () =>
      call(async () => Number((await client.get(keys.revocationSequence)) ?? 0)),

    putToken: (record) =>
      call(async () => {
        // Relative to our clock, so a Redis clock that is off does not shorten
        // or stretch a token's life; +1 keeps it through expiresAt itself.
        const timeToLive = Math.ceil(record.expiresAt - clock.now()) + 1;
        const key = keys.token(record.tokenId);
        if (timeToLive <= 0) await client.del(key);
        else await client.set(key, JSON.stringify(record), 'PX', timeToLive);
      }),

    getToken: (tokenId) =>
      call(async () => {
        const json = await client.get(keys.token(tokenId));
        return json === null ? undefined : (JSON.parse(json) as TokenRecord);
      }),

    deleteToken: (tokenId) =>
      call(async () => {
        await client.del(keys.token(tokenId));
      }),

    revokeScope: async (scope, value, keepForMs) => {
      checkKeepForMs(keepForMs);
      return call(async () => {
        // Two steps in two slots. The number is taken first so that any
        // revocationSequence read after this returns covers it; if the second
        // step fails the caller sees an error and the number is merely unused.
        const sequence = await client.incr(keys.revocationSequence);
        await client.raiseMark(keys.mark(scope, value), sequence, Math.ceil(keepForMs));
        return sequence;
      });
    },

    revocationMark: (scopes) =>
      call(async () => {
        // One GET per scope: the marks live in different slots. Auto-pipelining
        // still sends them together.
        const marks = await Promise.all(scopes.map(([scope, value]) => client.get(keys.mark(scope, value))));
        return marks.reduce<number>((highest, mark) => Math.max(highest, Number(mark ?? 0)), 0);
      }),

    readKeyRing: () =>
      call(async (): Promise<KeyRingSnapshot> => {
        const [version, keysJson] = await client.hmget(keys.keyRing, 'version', 'keys');
        if (version === null || version === undefined) return { version: 0, keys: [] };
        return { version: Number(version), keys: JSON.parse(keysJson ?? '[]') as StoredKey[] };
      }),

    writeKeyRing: (expectedVersion, ringKeys) =>
      call(async () => (await client.writeKeyRing(keys.keyRing, expectedVersion, JSON.stringify(ringKeys))) === 1),

    checkSecretFingerprint: (fingerprint) =>
      call(async () => {
        // SET NX GET answers the value that was there, or null if ours went in.
        const recorded = await client.set(keys.secretFingerprint, fingerprint, 'NX', 'GET');
        return recorded === null || recorded === fingerprint;
      }),

    ping: () =>
      call(async () => {
        await client.ping();
      }),

    async close() {
      if (closed) return;
      closed = true;
      try {
        if (client.status === 'ready') await client.quit();
        else client.disconnect();
      } catch {
        client.disconnect();
      }
    },
  };
}
