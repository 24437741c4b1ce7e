// This replica's view of the revocation marks, kept current by tailing the
// event stream, and the lease that says the view may be trusted.
//
// The rule that keeps answers exact: a revocation returns only once every
// replica holding a live lease has applied its event (or its lease lapsed,
// see PENDING_REPLICAS). A replica answers from its view only while its lease
// is live by its own monotonic clock. That clock starts the lease before
// Redis does (we count from sending the renewal) and ends it a margin early,
// so the replica always stops trusting its view before Redis stops counting
// it in. When a renewal finds that the lease had lapsed, revocations may have
// returned without this replica; it reads the stream to its end before it
// trusts the view again. When its place in the stream was trimmed away (an
// event whose `previous` is past the last one applied), it reloads the view
// in full.
//
// A view is a view of one store. The store carries an identity made when it
// is set up, and its sequence never goes backwards; every renewal, stream
// read and reload checks both (scripts.ts, RENEW_LEASE). When Redis comes back
// with less than it had (emptied, restored from an older backup, failed over
// to a replica that was behind), the view is dropped whole, with the token
// cache and key ring that go with it (onStoreChange), and built again from
// the store as it is now. Until then the replica answers from Redis or not at
// all. Revocations wait for replicas that may still trust a view of the store
// as it was: their leases were lost with it, so the store fences revocations
// for a lease time after it was set up again (PENDING_REPLICAS). A replica
// also stops trusting its view the moment a connection to Redis closes: the
// server it reconnects to may not be the one that granted its lease.
//
// Holders of a view outside Tally (clients watching revocations, see
// core/revocation-watch.ts) follow this one: every event it applies is passed
// on in order, and a reload, after which events cannot be told one by one,
// is passed on as `lost`.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from './connect.js';
import type { StoreEvent } from '../../core/ports.js';
import { floorCounts, parseMarkField, type KeyNames } from './keys.js';

export interface ReplicaViewOptions {
  /** Runs lease renewals and scripts. */
  client: RedisClient;
  /** A connection of its own for the blocking stream reads. */
  tailer: RedisClient;
  keys: KeyNames;
  leaseMs: number;
  /** Longest a stream read blocks; renewals happen at least this often. */
  blockMs: number;
  /** Called when the key ring changed, or may have while the view was not following. */
  onKeyRingChange: () => void;
  /**
   * Called when the store is not the one the view was built from, as the view
   * is rebuilt from the store as it is now (and before it answers again):
   * whatever else came from the old store must go too.
   */
  onStoreChange: (change: StoreChange) => void;
  onError: (error: unknown) => void;
  /** Told when a renewal finds that the lease of a view it trusted had lapsed (for metrics). */
  onLeaseLapsed?: () => void;
}

/**
 * How the store changed under a view: `set-up-again` when its identity is
 * new (its data was lost and it was set up again, or it is another store),
 * `went-back` when it lost events the view had applied (a failover to a
 * replica that was behind, a restore from an older backup).
 */
export type StoreChange = 'set-up-again' | 'went-back';

export interface ReplicaView {
  /** Whether the view may answer now: loaded, caught up, and the lease live. */
  fresh(): boolean;
  /**
   * Calls listener with every event the view applies from now on, in order,
   * and with `lost` when it reloads (events were trimmed away unread, or the
   * store changed). Undefined while the view is not fresh.
   */
  follow(listener: (event: StoreEvent) => void): { from: number; stop(): void } | undefined;
  /** The sequence of the last event applied; every revocation that returned while the view was fresh is at or below it. */
  appliedSequence(): number;
  /** The highest live mark among the fields (0 when none). Meaningful only while fresh(). */
  highestMark(fields: readonly string[]): number;
  close(): Promise<void>;
}

interface LocalMark {
  sequence: number;
  /** performance.now() after which the mark no longer counts. */
  keptUntil: number;
}

const EVENTS_PER_READ = 1000;
const RETRY_PAUSE_MS = 100;
/** RENEW_LEASE's answers when the store is not the one the view was built from. */
const RENEWAL_STORE_SET_UP_AGAIN = -1;
const RENEWAL_STORE_WENT_BACK = -2;

/** Calls onClose whenever a connection of client closes: on a Cluster, the connection to any node. */
function watchConnectionsClosing(client: RedisClient, onClose: () => void): void {
  if (client instanceof Cluster) {
    client.on('+node', (node: Redis) => node.on('close', onClose));
    for (const node of client.nodes()) node.on('close', onClose);
  } else {
    client.on('close', onClose);
  }
}

export function startReplicaView(options: ReplicaViewOptions): ReplicaView {
  const { client, tailer, keys, leaseMs } = options;
  const replicaId = randomUUID();
  const margin = Math.max(10, leaseMs / 20);
  const marks = new Map<string, LocalMark>();
  let applied = 0;
  let lastEventId = '0-0';
  /** The identity of the store the view was loaded from; undefined before the first load. */
  let identity: string | undefined;
  /** Every token numbered below it is revoked: see IDENTITY in scripts.ts. */
  let floor = 0;
  /** Set when the store was found to have lost what the view applied; the next reload reports it. */
  let storeChanged = false;
  let loaded = false;
  let catchingUp = true;
  let trustedUntil = 0;
  let closed = false;
  const listeners = new Set<(event: StoreEvent) => void>();
  const tell = (event: StoreEvent) => listeners.forEach((listener) => listener(event));

  function applyMark(field: string, sequence: number, remainingMs: number): void {
    const keptUntil = performance.now() + remainingMs;
    const existing = marks.get(field);
    if (existing === undefined || existing.sequence < sequence) marks.set(field, { sequence, keptUntil: Math.max(keptUntil, existing?.keptUntil ?? 0) });
    else existing.keptUntil = Math.max(existing.keptUntil, keptUntil);
  }

  function dropLapsedMarks(): void {
    const now = performance.now();
    for (const [field, mark] of marks) if (mark.keptUntil <= now) marks.delete(field);
  }

  /**
   * Stops answering from the view at once; the next round reloads it whole,
   * and the reload tells how the store changed (it compares what the view
   * was built from with the store as it is now).
   */
  function distrustStore(): void {
    storeChanged = true;
    trustedUntil = 0;
    catchingUp = true;
    loaded = false;
  }

  async function reload(): Promise<void> {
    const [sequence, eventId, flat, storeIdentity, storeFloor] = await client.snapshot(
      keys.revocationSequence, keys.marks, keys.markExpiry, keys.events, keys.identity, randomUUID(),
    );
    // A reload after a trimmed stream can be the first to meet a changed store.
    const change: StoreChange | undefined =
      identity !== undefined && storeIdentity !== identity ? 'set-up-again'
      : storeChanged || Number(sequence) < applied ? 'went-back'
      : undefined;
    storeChanged = false;
    marks.clear();
    // Whatever happened between the last event applied and this snapshot is not known event by event.
    tell({ kind: 'lost' });
    if (change !== undefined) options.onStoreChange(change);
    for (let i = 0; i + 2 < flat.length; i += 3) applyMark(flat[i]!, Number(flat[i + 1]), Number(flat[i + 2]));
    applied = Number(sequence);
    lastEventId = eventId;
    identity = storeIdentity;
    floor = Number(storeFloor);
    loaded = true;
    // Key-ring events may have been trimmed away with the rest.
    options.onKeyRingChange();
  }

  /**
   * Applies a batch of stream entries: 'gap' when events were trimmed away
   * unread, 'went-back' when the stream holds events numbered at or below
   * what was applied (the store lost events and numbered new ones again).
   */
  function applyEntries(entries: Array<[string, string[]]>): 'applied' | 'gap' | 'went-back' {
    for (const [id, fieldList] of entries) {
      const event: Record<string, string> = {};
      for (let i = 0; i + 1 < fieldList.length; i += 2) event[fieldList[i]!] = fieldList[i + 1]!;
      const sequence = Number(event.sequence);
      // Events written before numbers could jump carry no `previous`.
      const previous = event.previous === undefined ? sequence - 1 : Number(event.previous);
      if (sequence <= applied || previous < applied) return 'went-back';
      if (previous !== applied) return 'gap';
      if (event.kind === 'mark') applyMark(event.field ?? '', sequence, Number(event.keep));
      else if (event.kind === 'keys') options.onKeyRingChange();
      applied = sequence;
      lastEventId = id;
      if (listeners.size > 0) {
        const mark = event.kind === 'mark' ? parseMarkField(event.field ?? '') : undefined;
        if (mark !== undefined) tell({ kind: 'mark', sequence, ...mark });
        else if (event.kind === 'keys') tell({ kind: 'keys', sequence });
      }
    }
    return 'applied';
  }

  async function renew(): Promise<void> {
    const sentAt = performance.now();
    const held = await client.renewLease(
      keys.leases, keys.identity, keys.revocationSequence, keys.events,
      replicaId, applied, leaseMs, identity ?? '', lastEventId, randomUUID(),
    );
    if (held === RENEWAL_STORE_SET_UP_AGAIN || held === RENEWAL_STORE_WENT_BACK) {
      distrustStore();
    } else if (held === 1 && !catchingUp) {
      trustedUntil = sentAt + leaseMs - margin;
    } else if (held === 1) {
      // The read before this renewal began after the lapse was noticed, so it saw every event that could matter.
      catchingUp = false;
      trustedUntil = sentAt + leaseMs - margin;
    } else {
      if (!catchingUp) options.onLeaseLapsed?.();
      catchingUp = true;
      trustedUntil = 0;
    }
  }

  async function follow(): Promise<void> {
    let rounds = 0;
    while (!closed) {
      try {
        if (!loaded) await reload();
        const reply = (await (catchingUp
          ? tailer.xread('COUNT', EVENTS_PER_READ, 'STREAMS', keys.events, lastEventId)
          : tailer.xread('COUNT', EVENTS_PER_READ, 'BLOCK', options.blockMs, 'STREAMS', keys.events, lastEventId))) as
          | Array<[string, Array<[string, string[]]>]>
          | null;
        const entries = reply?.[0]?.[1] ?? [];
        const outcome = applyEntries(entries);
        if (outcome === 'went-back') {
          distrustStore();
          continue;
        }
        if (outcome === 'gap') {
          loaded = false;
          catchingUp = true;
          trustedUntil = 0;
          continue;
        }
        // More may be waiting; read on before saying we are caught up.
        if (entries.length === EVENTS_PER_READ && catchingUp) continue;
        await renew();
        if (++rounds % 64 === 0) dropLapsedMarks();
      } catch (error) {
        if (closed) return;
        options.onError(error);
        await sleep(RETRY_PAUSE_MS);
      }
    }
  }

  // The server a connection comes back to may not be the one that granted
  // the lease (a failover), nor hold what it held: trust nothing until a
  // renewal on the new connection has checked the store.
  const distrust = () => {
    trustedUntil = 0;
    catchingUp = true;
  };
  watchConnectionsClosing(client, distrust);
  watchConnectionsClosing(tailer, distrust);

  const following = follow();

  return {
    fresh: () => loaded && !catchingUp && performance.now() < trustedUntil,
    follow(listener) {
      if (!(loaded && !catchingUp && performance.now() < trustedUntil)) return undefined;
      listeners.add(listener);
      return { from: applied, stop: () => void listeners.delete(listener) };
    },
    appliedSequence: () => applied,
    highestMark(fields) {
      const now = performance.now();
      let highest = floorCounts(fields) ? floor : 0;
      for (const field of fields) {
        const mark = marks.get(field);
        if (mark !== undefined && mark.keptUntil > now && mark.sequence > highest) highest = mark.sequence;
      }
      return highest;
    },
    async close() {
      closed = true;
      trustedUntil = 0;
      tell({ kind: 'lost' });
      listeners.clear();
      tailer.disconnect();
      await following;
      // Let revocations stop waiting for this replica at once rather than after its lease.
      await client.hdel(keys.leases, replicaId).catch(() => {});
    },
  };
}
