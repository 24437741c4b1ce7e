// The reference store: one process, nothing shared, nothing kept across a
// restart. It defines what the conformance suite expects of every store.

import { StoreUnavailableError } from '../../core/errors.js';
import type { Clock, LocalView, Store, StoreEvent } from '../../core/ports.js';
import { systemClock } from '../../core/system.js';
import type { KeyRingSnapshot, MarkScope, StoredKey, TokenRecord } from '../../core/types.js';
import { frozenCopy } from '../frozen-copy.js';
import { untilLeaseHoldersApplied } from '../lease-wait.js';
import { checkMarkKeepTime } from '../mark-keep-time.js';

export interface MemoryStoreOptions {
  clock?: Clock;
  /** How often expired records and marks are dropped; lookups ignore them in between. */
  sweepIntervalMs?: number;
  /** How long the lease of a holder of a view outside Tally (a client watching revocations) lasts. */
  holderLeaseMs?: number;
}

interface HolderLease {
  applied: number;
  /** clock.now() until which the lease is live. */
  until: number;
}

interface Mark {
  sequence: number;
  keptUntil: number;
}

const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
const DEFAULT_HOLDER_LEASE_MS = 1000;

export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const clock = options.clock ?? systemClock;
  const tokens = new Map<string, TokenRecord>();
  const marks = new Map<string, Mark>();
  let sequence = 0;
  let keyRing: KeyRingSnapshot = { version: 0, keys: [] };
  let secretFingerprint: string | undefined;
  let closed = false;
  const holderLeaseMs = options.holderLeaseMs ?? DEFAULT_HOLDER_LEASE_MS;
  const holderLeases = new Map<string, HolderLease>();
  /** Events of about the last lease, oldest first, and the newest before it: what a renewing holder must have applied. */
  const recentEvents: Array<{ at: number; sequence: number }> = [];
  function recordEvent(eventSequence: number): void {
    recentEvents.push({ at: clock.now(), sequence: eventSequence });
    const due = clock.now() - holderLeaseMs;
    while (recentEvents.length > 1 && recentEvents[1]!.at <= due) recentEvents.shift();
  }
  /** The sequence of the newest event appended a whole lease ago or earlier (0 when none). */
  function dueSequence(): number {
    const due = clock.now() - holderLeaseMs;
    let sequence = 0;
    for (const event of recentEvents) if (event.at <= due) sequence = event.sequence;
    return sequence;
  }
  const followers = new Set<(event: StoreEvent) => void>();
  const tell = (event: StoreEvent) => followers.forEach((follower) => follower(event));

  /** Live leases of holders yet to apply the event numbered sequence; lapsed ones are dropped. */
  function pendingHolders(sequence: number): number {
    let pending = 0;
    for (const [holderId, lease] of holderLeases) {
      if (lease.until <= clock.now()) holderLeases.delete(holderId);
      else if (lease.applied < sequence) pending += 1;
    }
    return pending;
  }

  const isExpired = (record: TokenRecord) => clock.now() > record.expiresAt;
  const isLapsed = (mark: Mark) => clock.now() > mark.keptUntil;
  // Scope names hold no NUL, so the pair maps to exactly one string.
  const markKey = (scope: MarkScope, value: string) => `${scope}\u0000${value}`;

  function liveRecord(tokenId: string): TokenRecord | undefined {
    const record = tokens.get(tokenId);
    if (record === undefined) return undefined;
    if (isExpired(record)) {
      tokens.delete(tokenId);
      return undefined;
    }
    return record;
  }

  function highestMark(scopes: ReadonlyArray<readonly [MarkScope, string]>): number {
    let highest = 0;
    for (const [scope, value] of scopes) {
      const mark = marks.get(markKey(scope, value));
      if (mark !== undefined && !isLapsed(mark)) highest = Math.max(highest, mark.sequence);
    }
    return highest;
  }

  const localView: LocalView = { getToken: liveRecord, revocationMark: highestMark, revocationSequence: () => sequence };

  function sweep(): void {
    for (const [tokenId, record] of tokens) if (isExpired(record)) tokens.delete(tokenId);
    for (const [key, mark] of marks) if (isLapsed(mark)) marks.delete(key);
  }
  const sweeper = setInterval(sweep, options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
  // The sweep is housekeeping; it must never be the reason a process stays up.
  sweeper.unref();

  // Async so that a closed store rejects like an unreachable Redis does.
  async function open(): Promise<void> {
    if (closed) throw new StoreUnavailableError('the token store is closed');
  }

  return {
    async revocationSequence() {
      await open();
      return sequence;
    },

    async putToken(record) {
      await open();
      // A frozen copy (store/frozen-copy.ts): the caller's record may change after, what is stored cannot.
      tokens.set(record.tokenId, frozenCopy(record));
    },

    async getToken(tokenId) {
      await open();
      return liveRecord(tokenId);
    },

    async revokeScope(scope, value, keepForMs) {
      checkMarkKeepTime(keepForMs);
      await open();
      sequence += 1;
      const taken = sequence;
      const key = markKey(scope, value);
      const existing = marks.get(key);
      const live = existing !== undefined && !isLapsed(existing) ? existing : undefined;
      marks.set(key, {
        sequence: Math.max(live?.sequence ?? 0, taken),
        // A shorter keep must not cut short what an earlier revocation promised.
        keptUntil: Math.max(live?.keptUntil ?? 0, clock.now() + keepForMs),
      });
      recordEvent(taken);
      tell({ kind: 'mark', sequence: taken, scope, value });
      await untilLeaseHoldersApplied(async () => pendingHolders(taken), holderLeaseMs);
      return taken;
    },

    async revocationMark(scopes) {
      await open();
      return highestMark(scopes);
    },

    // Everything here is in memory: it can always answer at once, until closed.
    localView: () => (closed ? undefined : localView),

    async readKeyRing() {
      await open();
      return structuredClone(keyRing);
    },

    async writeKeyRing(expectedVersion: number, keys: StoredKey[]) {
      await open();
      if (keyRing.version !== expectedVersion) return false;
      keyRing = { version: expectedVersion + 1, keys: structuredClone(keys) };
      // As in Redis, a ring change takes a number of the sequence, so holders apply it in order with marks.
      sequence += 1;
      recordEvent(sequence);
      tell({ kind: 'keys', sequence });
      return true;
    },

    async checkSecretFingerprint(fingerprint) {
      await open();
      secretFingerprint ??= fingerprint;
      return secretFingerprint === fingerprint;
    },

    async time() {
      await open();
      return clock.now();
    },

    async ping() {
      await open();
    },

    holders: {
      leaseMs: holderLeaseMs,
      fresh: () => !closed,
      follow(listener) {
        if (closed) return undefined;
        followers.add(listener);
        return { from: sequence, stop: () => void followers.delete(listener) };
      },
      async grant(holderId, appliedSequence) {
        await open();
        // Drops the lapsed, so holders that came and went leave nothing behind.
        pendingHolders(Number.POSITIVE_INFINITY);
        holderLeases.set(holderId, { applied: appliedSequence, until: clock.now() + holderLeaseMs });
        return { sequence, time: clock.now() };
      },
      async renew(holderId, appliedSequence) {
        await open();
        const lease = holderLeases.get(holderId);
        if (lease === undefined || lease.until <= clock.now() || appliedSequence < dueSequence()) {
          holderLeases.delete(holderId);
          return false;
        }
        holderLeases.set(holderId, { applied: appliedSequence, until: clock.now() + holderLeaseMs });
        return true;
      },
      async release(holderId) {
        await open();
        holderLeases.delete(holderId);
      },
    },

    async close() {
      closed = true;
      clearInterval(sweeper);
      tell({ kind: 'lost' });
      followers.clear();
    },
  };
}
