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
// trusts the view again. When its place in the stream was trimmed away (a gap
// in the consecutive sequence numbers), it reloads the view in full.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreUnavailableError } from '../../core/errors.js';
import type { RedisClient } from './connect.js';
import type { KeyNames } from './keys.js';

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
  onError: (error: unknown) => void;
  /** Told when a renewal finds that the lease of a view it trusted had lapsed (for metrics). */
  onLeaseLapsed?: () => void;
}

export interface ReplicaView {
  /** Whether the view may answer now: loaded, caught up, and the lease live. */
  fresh(): boolean;
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

export function startReplicaView(options: ReplicaViewOptions): ReplicaView {
  const { client, tailer, keys, leaseMs } = options;
  const replicaId = randomUUID();
  const margin = Math.max(10, leaseMs / 20);
  const marks = new Map<string, LocalMark>();
  let applied = 0;
  let lastEventId = '0-0';
  let loaded = false;
  let catchingUp = true;
  let trustedUntil = 0;
  let closed = false;

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

  async function reload(): Promise<void> {
    const [sequence, eventId, flat] = await client.snapshot(keys.revocationSequence, keys.marks, keys.markExpiry, keys.events);
    marks.clear();
    for (let i = 0; i + 2 < flat.length; i += 3) applyMark(flat[i]!, Number(flat[i + 1]), Number(flat[i + 2]));
    applied = Number(sequence);
    lastEventId = eventId;
    loaded = true;
    // Key-ring events may have been trimmed away with the rest.
    options.onKeyRingChange();
  }

  /** Applies a batch of stream entries; false when a gap shows events were trimmed away unread. */
  function applyEntries(entries: Array<[string, string[]]>): boolean {
    for (const [id, fieldList] of entries) {
      const event: Record<string, string> = {};
      for (let i = 0; i + 1 < fieldList.length; i += 2) event[fieldList[i]!] = fieldList[i + 1]!;
      const sequence = Number(event.sequence);
      if (sequence <= applied) {
        lastEventId = id;
        continue;
      }
      if (sequence !== applied + 1) return false;
      if (event.kind === 'mark') applyMark(event.field ?? '', sequence, Number(event.keep));
      else if (event.kind === 'keys') options.onKeyRingChange();
      applied = sequence;
      lastEventId = id;
    }
    return true;
  }

  async function renew(): Promise<void> {
    const sentAt = performance.now();
    const held = await client.renewLease(keys.leases, replicaId, applied, leaseMs);
    if (held === 1 && !catchingUp) {
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
        if (!applyEntries(entries)) {
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

  const following = follow();

  return {
    fresh: () => loaded && !catchingUp && performance.now() < trustedUntil,
    appliedSequence: () => applied,
    highestMark(fields) {
      const now = performance.now();
      let highest = 0;
      for (const field of fields) {
        const mark = marks.get(field);
        if (mark !== undefined && mark.keptUntil > now && mark.sequence > highest) highest = mark.sequence;
      }
      return highest;
    },
    async close() {
      closed = true;
      trustedUntil = 0;
      tailer.disconnect();
      await following;
      // Let revocations stop waiting for this replica at once rather than after its lease.
      await client.hdel(keys.leases, replicaId).catch(() => {});
    },
  };
}

/**
 * Waits until every replica with a live lease has applied the event with
 * this sequence. A replica that neither applies it nor lets its lease lapse
 * within twice the lease time means something is wrong: the revocation is
 * recorded but not confirmed, and the caller hears so.
 */
export async function untilReplicasApplied(client: RedisClient, keys: KeyNames, sequence: number, leaseMs: number): Promise<void> {
  const deadline = performance.now() + 2 * leaseMs;
  for (let attempt = 0; ; attempt++) {
    if ((await client.pendingReplicas(keys.leases, sequence)) === 0) return;
    if (performance.now() > deadline) {
      throw new StoreUnavailableError('the revocation is recorded but not every replica has confirmed it yet; retry');
    }
    // The first checks come fast: a healthy replica applies an event within a round trip or two.
    await (attempt < 4 ? new Promise((resolve) => setImmediate(resolve)) : sleep(1));
  }
}
