// WatchRevocations, the transport-agnostic part: a holder of a local view of
// Introspect answers outside Tally (a client) is told, in order, the events
// this replica applies that could change an answer it caches, and holds a
// lease in the store, renewed by its acknowledgements, that Revoke waits for
// as it waits for a replica's (ports.ts, ViewHolders). The rule that keeps
// its answers exact is the replicas' own (store/redis/replica-view.ts): a
// holder answers from its view only while its lease is live by its own
// clock, counted from the moment it sent the acknowledgement that renewed it.
//
// What a holder hears:
// - `started` first: the sequence it starts from (every later event comes),
//   the watch id to acknowledge with, the lease, and the store's sequence at
//   the grant: revocations up to it may have returned before the lease
//   existed, so the holder answers from its view only once it has applied
//   events that far.
// - every mark and key-ring event, each with its sequence; for a caller
//   limited to audiences, a token's revocation only when the token names one
//   of them (otherwise the event is a bare progress message), and a subject,
//   client or session revocation without its value (the holder drops its
//   whole view): it hears nothing of other audiences' tokens.
// - a progress message about every quarter lease while this replica follows
//   the store without delay, so the holder can keep its lease; when this
//   replica stops following, the holder hears nothing, stops acknowledging,
//   and its lease lapses.
// The watch ends (StoreUnavailableError) when events may have been missed,
// and quietly when the replica drains; the holder then drops its view.
import { createHash, randomBytes } from 'node:crypto';
import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError, StoreUnavailableError, type TallyError } from './errors.js';
import type { Store, StoreEvent, ViewHolders } from './ports.js';
import { namesOneOf } from './token-service.js';
import type { MarkScope } from './types.js';

/** Who holds the view: the caller, with its audiences when it is limited to them. */
export interface ViewHolder {
  name: string;
  audiences?: readonly string[];
}

export type WatchMessage =
  | { kind: 'started'; sequence: number; watchId: string; leaseMs: number; catchUpTo: number; storeTime: number }
  /** scope undefined: a revocation withheld from a caller limited to audiences. */
  | { kind: 'revoked'; sequence: number; scope?: MarkScope; value?: string }
  | { kind: 'keys'; sequence: number }
  | { kind: 'progress'; sequence: number };

export interface RevocationWatch {
  /**
   * The messages of one watch, until signal aborts or endAll(). Throws
   * StoreUnavailableError when this replica cannot serve one now, or when
   * events may have been missed; FailedPreconditionError when it keeps no
   * view to follow.
   */
  watch(holder: ViewHolder, signal: AbortSignal): AsyncGenerator<WatchMessage, void, undefined>;
  /**
   * Records that the holder has applied every message up to sequence and
   * renews its lease: true when it was live. With release, drops the lease
   * (the holder stopped answering from its view): false.
   */
  acknowledge(holder: ViewHolder, watchId: string, sequence: number, release: boolean): Promise<boolean>;
  /** Ends every watch (the replica drains): each holder drops its view and watches elsewhere. */
  endAll(): void;
}

export interface RevocationWatchOptions {
  store: Store;
  /** How often a watch with nothing to say sends progress; default a quarter of the holders' lease. */
  progressIntervalMs?: number;
  /** Events a watch may hold unsent; past it, a holder that does not read is cut off. */
  maxQueuedEvents?: number;
}

const WATCH_ID_BYTES = 16;
const DEFAULT_MAX_QUEUED_EVENTS = 10_000;

/**
 * The holder's lease in the store is named after the caller, its audiences
 * and the watch id together: only the caller that opened the watch can renew
 * it, and a caller whose audiences changed (the callers file was edited)
 * finds no lease and must watch again, hearing what its audiences now allow.
 */
function holderIdOf(holder: ViewHolder, watchId: string): string {
  const audiences = holder.audiences === undefined ? '*' : [...holder.audiences].sort().join('\u0000');
  return createHash('sha256').update(`${holder.name}\u0001${audiences}\u0001${watchId}`, 'utf8').digest('base64url');
}

export function createRevocationWatch(options: RevocationWatchOptions): RevocationWatch {
  const { store } = options;
  const maxQueued = options.maxQueuedEvents ?? DEFAULT_MAX_QUEUED_EVENTS;
  const ending = new Set<() => void>();

  function holdersOf(): ViewHolders {
    if (store.holders === undefined) {
      throw new FailedPreconditionError('this replica keeps no local view, so it has no revocations to tell (TALLY_CACHE_SIZE=0)');
    }
    return store.holders;
  }

  /** What the holder is told of one event: the event, withheld, or progress only. */
  async function messageFor(event: Exclude<StoreEvent, { kind: 'lost' }>, holder: ViewHolder): Promise<WatchMessage> {
    const { sequence } = event;
    if (event.kind === 'keys') return { kind: 'keys', sequence };
    const { scope, value } = event;
    // Key ids are public (the JWKS); a caller sees every scope when it is not limited.
    if (holder.audiences === undefined || scope === 'key') return { kind: 'revoked', sequence, scope, value };
    if (scope !== 'token') return { kind: 'revoked', sequence };
    let names: boolean;
    try {
      const record = await store.getToken(value);
      names = record !== undefined && namesOneOf(record, holder.audiences);
    } catch {
      // Unknown whether it is the holder's: it drops everything rather than keep a revoked answer.
      return { kind: 'revoked', sequence };
    }
    return names ? { kind: 'revoked', sequence, scope, value } : { kind: 'progress', sequence };
  }

  return {
    async *watch(holder, signal) {
      const holders = holdersOf();
      const progressIntervalMs = options.progressIntervalMs ?? holders.leaseMs / 4;
      const queue: StoreEvent[] = [];
      let ended: TallyError | 'drained' | undefined;
      let wake: (() => void) | undefined;
      const end = (why: TallyError | 'drained') => {
        ended ??= why;
        wake?.();
      };
      const following = holders.follow((event) => {
        if (queue.length >= maxQueued) end(new ResourceExhaustedError('the holder fell too far behind reading revocations; watch again'));
        else queue.push(event);
        wake?.();
      });
      if (following === undefined) throw new StoreUnavailableError('this replica is not following revocations right now; retry');
      const drain = () => end('drained');
      ending.add(drain);
      const onAbort = () => wake?.();
      signal.addEventListener('abort', onAbort);
      try {
        const watchId = randomBytes(WATCH_ID_BYTES).toString('base64url');
        let applied = following.from;
        const grant = await holders.grant(holderIdOf(holder, watchId), applied);
        yield { kind: 'started', sequence: applied, watchId, leaseMs: holders.leaseMs, catchUpTo: grant.sequence, storeTime: grant.time };
        let lastSent = performance.now();
        while (!signal.aborted) {
          if (ended === 'drained') return;
          if (ended !== undefined) throw ended;
          const event = queue.shift();
          if (event === undefined) {
            const quietMs = performance.now() - lastSent;
            if (quietMs < progressIntervalMs) {
              await new Promise<void>((resolve) => {
                const timer = setTimeout(resolve, progressIntervalMs - quietMs);
                wake = () => {
                  clearTimeout(timer);
                  resolve();
                };
              });
              wake = undefined;
              continue;
            }
            lastSent = performance.now();
            // Only while this replica keeps up: otherwise silence lets the holder's lease lapse.
            if (holders.fresh()) yield { kind: 'progress', sequence: applied };
            continue;
          }
          if (event.kind === 'lost') throw new StoreUnavailableError('revocation events may have been missed here (the store lost data, or this replica rebuilt its view); watch again');
          const message = await messageFor(event, holder);
          applied = event.sequence;
          lastSent = performance.now();
          yield message;
        }
      } finally {
        // The lease is left to lapse: the holder may trust it until then, and it says when it stops (release).
        following.stop();
        ending.delete(drain);
        signal.removeEventListener('abort', onAbort);
      }
    },

    async acknowledge(holder, watchId, sequence, release) {
      const holders = holdersOf();
      if (!Number.isSafeInteger(sequence) || sequence < 0) throw new InvalidArgumentError('sequence', 'is not a sequence Tally hands out');
      const holderId = holderIdOf(holder, watchId);
      if (release) {
        await holders.release(holderId);
        return false;
      }
      return holders.renew(holderId, sequence);
    },

    endAll() {
      for (const drain of [...ending]) drain();
    },
  };
}
