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
// The fast path. With a cache (cacheSize > 0) this replica keeps a view of
// the revocation marks, kept current from the event stream under a lease
// (replica-view.ts), and a bounded cache of token records (token-cache.ts);
// while the view is fresh, Introspect needs no round trip for a cached token.
// Whatever the cache setting, a revocation returns only once every leased
// replica has applied it.
//
// Failure. Every method either answers from Redis or rejects with
// StoreUnavailableError (driver error kept as its cause): there is no offline
// queue and every command has a timeout (see connect.ts), so an unreachable or
// stalled Redis is reported within commandTimeoutMs and never hangs a caller.

import { randomUUID } from 'node:crypto';
import { StoreUnavailableError } from '../../core/errors.js';
import type { Clock, LocalView, Store } from '../../core/ports.js';
import { systemClock } from '../../core/system.js';
import type { KeyRingSnapshot, MarkScope, StoredKey, TokenRecord } from '../../core/types.js';
import { checkMarkKeepTime } from '../mark-keep-time.js';
import { parseRedisUrl } from './connection-url.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_HOLDER_LEASE_MS, DEFAULT_LEASE_MS } from './defaults.js';
import { createRedisClient, duplicateClient, keepConnecting, waitForReplicas } from './connect.js';
import { createKeyNames, DEFAULT_KEY_PREFIX, holderField, markField } from './keys.js';
import { untilLeaseHoldersApplied } from '../lease-wait.js';
import { startReplicaView, type ReplicaView, type StoreChange } from './replica-view.js';
import { checkRedisSettings, type SettingsReport } from './settings-check.js';
import { createTokenCache, type TokenCache } from './token-cache.js';

export interface RedisStoreOptions {
  /** redis://, rediss://, redis+sentinel:// or redis+cluster:// (see connection-url.ts). */
  url: string;
  /** How long one Redis command may take before the call fails. */
  commandTimeoutMs?: number;
  /** Prepended to every key, so several deployments (or tests) can share one Redis. */
  keyPrefix?: string;
  /** The longest wait between two reconnection attempts. */
  reconnectMaxDelayMs?: number;
  /** The clock the token cache judges a cached record's expiry by (records in Redis expire on Redis's). */
  clock?: Clock;
  /** Connection errors as ioredis reports them, for the log; they repeat while Redis is down. */
  onConnectionError?: (error: Error) => void;
  /** Token records cached on this replica; 0 turns the cache and the replica's view off. */
  cacheSize?: number;
  /** How long a replica's lease on its view lasts (see replica-view.ts). */
  leaseMs?: number;
  /** How long the lease of a holder of a view outside Tally (a client watching revocations) lasts. */
  holderLeaseMs?: number;
  /** Events kept in the stream; a replica further behind reloads in full. */
  eventsToKeep?: number;
  /**
   * Replicas (of Redis) that must have a revocation before it returns (WAIT),
   * so that a failover to one of them cannot lose it. 0: the primary alone.
   */
  replicasToWait?: number;
  /** Failures in the background work of the replica's view, for the log. */
  onBackgroundError?: (error: unknown) => void;
  /** This replica's lease lapsed while its view was trusted, for metrics. */
  onLeaseLapsed?: () => void;
  /**
   * Told when this replica found that Redis came back with less than it had
   * (see replica-view.ts); its local view, token cache and key ring are
   * already being rebuilt from the store as it is now.
   */
  onStoreChange?: (change: StoreChange) => void;
  /**
   * Given the persistence and eviction settings found on Redis (see
   * settings-check.ts) each time the connection becomes ready: at start-up
   * and after every reconnect, which may be to another server.
   */
  onSettingsChecked?: (report: SettingsReport) => void;
}

const DEFAULT_RECONNECT_MAX_DELAY_MS = 1000;
const DEFAULT_EVENTS_TO_KEEP = 100_000;

export interface RedisStore extends Store {
  /** Whether this replica answers from its local view right now (false with the cache off). */
  localViewFresh(): boolean;
}

export function createRedisStore(options: RedisStoreOptions): RedisStore {
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const clock = options.clock ?? systemClock;
  const keys = createKeyNames(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
  const clientSettings = { commandTimeoutMs, reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? DEFAULT_RECONNECT_MAX_DELAY_MS };
  const client = createRedisClient(parseRedisUrl(options.url), clientSettings);
  // Without a listener ioredis prints every reconnection failure to stderr.
  client.on('error', options.onConnectionError ?? (() => {}));
  const onSettingsChecked = options.onSettingsChecked;
  if (onSettingsChecked !== undefined) {
    client.on('ready', () => {
      checkRedisSettings(client).then(onSettingsChecked, (error: unknown) => options.onBackgroundError?.(error));
    });
  }
  let closed = false;
  /** Set as close() begins, before the view's own connection goes. */
  let closing = false;
  keepConnecting(client, clientSettings, () => closing);
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

  /**
   * Runs one step against Redis within the command timeout, counted from the
   * moment the call is made. ioredis's own timeout starts only when a command
   * is written: with auto-pipelining, a command made while an earlier batch
   * is still unanswered waits for that batch first (one batch at a time per
   * connection), so behind a stuck batch it took up to twice the timeout.
   * The command may still run later; as with any call that failed, the
   * caller cannot know whether it did.
   */
  async function call<T>(operation: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new StoreUnavailableError(undefined, { cause: new Error(`no answer within ${commandTimeoutMs} ms`) })), commandTimeoutMs);
    });
    try {
      return await Promise.race([
        (async () => {
          if (client.status !== 'ready' || closed) await untilConnected();
          return operation();
        })(),
        deadline,
      ]);
    } catch (error) {
      if (error instanceof StoreUnavailableError) throw error;
      throw new StoreUnavailableError(undefined, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  const eventsToKeep = options.eventsToKeep ?? DEFAULT_EVENTS_TO_KEEP;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const holderLeaseMs = options.holderLeaseMs ?? DEFAULT_HOLDER_LEASE_MS;
  // A revocation may wait for either kind of lease; the fence after a store was set up must outlast both.
  const longestLeaseMs = Math.max(leaseMs, holderLeaseMs);
  const keyRingListeners: Array<() => void> = [];
  let cache: TokenCache | undefined;
  let view: ReplicaView | undefined;
  /** The master secret's fingerprint this store accepted, to record again on a store set up again. */
  let acceptedFingerprint: string | undefined;
  if ((options.cacheSize ?? 0) > 0) {
    cache = createTokenCache(options.cacheSize!, clock);
    const tailer = duplicateClient(client);
    keepConnecting(tailer, clientSettings, () => closing);
    // Its failures surface through the stream reads; the listener only keeps ioredis from printing them.
    tailer.on('error', () => {});
    view = startReplicaView({
      client,
      tailer,
      keys,
      leaseMs,
      // A blocked read must end well inside both the command timeout and the lease.
      blockMs: Math.max(10, Math.min(leaseMs / 4, commandTimeoutMs / 2)),
      onKeyRingChange: () => keyRingListeners.forEach((listener) => listener()),
      onStoreChange: (change) => {
        cache?.clear();
        // Set up again under the same master key: a replica started later with another one must still be refused.
        if (acceptedFingerprint !== undefined) {
          client.set(keys.secretFingerprint, acceptedFingerprint, 'NX').catch((error: unknown) => options.onBackgroundError?.(error));
        }
        keyRingListeners.forEach((listener) => listener());
        options.onStoreChange?.(change);
      },
      onError: options.onBackgroundError ?? (() => {}),
      onLeaseLapsed: options.onLeaseLapsed,
    });
  }

  async function durable(): Promise<void> {
    const replicas = options.replicasToWait ?? 0;
    if (replicas === 0) return;
    const acknowledged = await waitForReplicas(client, keys.revocationSequence, replicas, commandTimeoutMs);
    if (acknowledged < replicas) {
      throw new StoreUnavailableError(`the revocation reached ${acknowledged} of ${replicas} Redis replicas in time; retry`);
    }
  }

  // The hot path asks with the same (frozen) scopes of a record each time: their fields are made once.
  const markFields = new WeakMap<object, string[]>();
  const markFieldsOf = (scopes: ReadonlyArray<readonly [MarkScope, string]>): string[] => {
    let fields = markFields.get(scopes);
    if (fields === undefined) {
      fields = scopes.map(([scope, value]) => markField(scope, value));
      if (Object.isFrozen(scopes)) markFields.set(scopes, fields);
    }
    return fields;
  };
  // Trusted only at the moment localView() hands it out (the view fresh); the hot path reads it at once.
  const localView: LocalView | undefined =
    cache === undefined || view === undefined
      ? undefined
      : {
          getToken: (tokenId) => cache.get(tokenId),
          revocationMark: (scopes) => view.highestMark(markFieldsOf(scopes)),
          revocationSequence: () => view.appliedSequence(),
        };

  return {
    revocationSequence: () =>
      view?.fresh()
        ? Promise.resolve(view.appliedSequence())
        : call(async () => Number((await client.get(keys.revocationSequence)) ?? 0)),

    putToken: (record) =>
      call(async () => {
        // expiresAt is a time on the store's clock (core/store-clock.ts), so
        // Redis keeps the record until its own clock passes it, whatever this
        // replica's clock says; +1 keeps it through expiresAt itself. A time
        // already past deletes an older copy.
        await client.putToken(keys.token(record.tokenId), JSON.stringify(record), Math.ceil(record.expiresAt) + 1);
        cache?.set(record);
      }),

    getToken: (tokenId) => {
      // Only from a fresh view: a record cached from a store that since lost it must not answer.
      const cached = closed || view?.fresh() !== true ? undefined : cache?.get(tokenId);
      if (cached !== undefined) return Promise.resolve(cached);
      return call(async () => {
        const json = await client.get(keys.token(tokenId));
        if (json === null) return undefined;
        const record = JSON.parse(json) as TokenRecord;
        cache?.set(record);
        return record;
      });
    },

    revokeScope: async (scope, value, keepForMs) => {
      checkMarkKeepTime(keepForMs);
      // Each step within its own command timeout; the wait for replicas is bounded by the lease.
      const sequence = await call(() =>
        client.revoke(
          keys.revocationSequence, keys.marks, keys.markExpiry, keys.events, keys.identity,
          markField(scope, value), Math.ceil(keepForMs), eventsToKeep, randomUUID(),
        ),
      );
      await call(durable);
      await untilLeaseHoldersApplied((pendingFor) => call(() => client.pendingReplicas(keys.leases, keys.identity, sequence, pendingFor)), longestLeaseMs);
      return sequence;
    },

    localView: () => (closed || cache === undefined || view?.fresh() !== true ? undefined : localView),

    revocationMark: (scopes) => {
      const fields = scopes.map(([scope, value]) => markField(scope, value));
      if (view?.fresh()) return Promise.resolve(view.highestMark(fields));
      return call(async () => Number(await client.readMarks(keys.marks, keys.markExpiry, keys.identity, ...fields)));
    },

    readKeyRing: () =>
      call(async (): Promise<KeyRingSnapshot> => {
        const [version, keysJson, identity] = await client.readKeyRing(keys.keyRing, keys.identity);
        const storeIdentity = identity ?? undefined;
        if (version === null || version === undefined) return { version: 0, keys: [], storeIdentity };
        return { version: Number(version), keys: JSON.parse(keysJson ?? '[]') as StoredKey[], storeIdentity };
      }),

    writeKeyRing: async (expectedVersion, ringKeys) => {
      const written = await call(() =>
        client.writeKeyRing(
          keys.keyRing, keys.revocationSequence, keys.events, keys.identity,
          expectedVersion, JSON.stringify(ringKeys), eventsToKeep, randomUUID(),
        ),
      );
      if (written === 1) await call(durable);
      return written === 1;
    },

    onKeyRingChange(listener) {
      keyRingListeners.push(listener);
    },

    localViewFresh: () => view?.fresh() ?? false,

    // Holders are told the events this replica's view applies: without a view there is nothing to follow.
    holders:
      view === undefined
        ? undefined
        : {
            leaseMs: holderLeaseMs,
            fresh: () => !closed && view!.fresh(),
            follow: (listener) => (closed ? undefined : view!.follow(listener)),
            grant: (holderId, appliedSequence) =>
              call(async () => {
                const [sequence, time] = await client.grantHolderLease(keys.leases, keys.revocationSequence, holderField(holderId), appliedSequence, holderLeaseMs);
                return { sequence: Number(sequence), time: Number(time) };
              }),
            renew: (holderId, appliedSequence) =>
              call(async () => (await client.renewHolderLease(keys.leases, keys.events, holderField(holderId), appliedSequence, holderLeaseMs)) === 1),
            release: (holderId) =>
              call(async () => {
                await client.hdel(keys.leases, holderField(holderId));
              }),
          },

    checkSecretFingerprint: (fingerprint) =>
      call(async () => {
        // SET NX GET answers the value that was there, or null if ours went in.
        const recorded = await client.set(keys.secretFingerprint, fingerprint, 'NX', 'GET');
        const accepted = recorded === null || recorded === fingerprint;
        if (accepted) acceptedFingerprint = fingerprint;
        return accepted;
      }),

    // The clock of the node that holds the marks and leases (on a Cluster, the {revocations} slot's).
    time: () =>
      call(async () => {
        const [seconds, microseconds] = await client.serverTime(keys.revocationSequence);
        return Number(seconds) * 1000 + Math.floor(Number(microseconds) / 1000);
      }),

    ping: () =>
      call(async () => {
        await client.ping();
      }),

    async close() {
      if (closed) return;
      closing = true;
      await view?.close();
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
