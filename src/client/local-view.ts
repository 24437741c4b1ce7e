// The client's local view: Introspect answered in process, from a bounded
// cache of active answers, with the guarantee Tally gives its own replicas:
// once Revoke has returned, this client answers no covered token active.
//
// How (the server side is core/revocation-watch.ts):
// - FollowRevocations streams, in order, every event that could change a
//   cached answer; each one applied is acknowledged on the same stream, which
//   renews a lease Tally holds for this client. Revoke waits until the client
//   has acknowledged its event, or its lease has lapsed.
// - The cache answers only while that lease is live by this process's own
//   monotonic clock, counted from the moment the acknowledgement that renewed
//   it was sent (Tally counts from later, when it renews), less a margin, and
//   only once the events up to the store's sequence at the grant are applied.
//   Otherwise every call goes to Tally; if Tally cannot be reached the call
//   fails, and nothing is answered from the cache (fail closed).
// - An answer in flight while a revocation is applied must not be cached:
//   each active answer says which revocation sequence it reflects, and one
//   older than the last event applied is used once and not kept.
// - Inactive answers are never cached; a cached answer is checked for expiry
//   on every hit, on the store's clock as read at the start of the watch.
// - When the stream breaks, falls silent, or the lease is lost, the cache is
//   dropped at once, and the client watches again with backoff.

import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { durationMs, timestampMs } from '@bufbuild/protobuf/wkt';
import type { CallOptions, Client } from '@connectrpc/connect';
import { createWritableIterable, type WritableIterable } from '@connectrpc/connect/protocol';
import {
  IntrospectResponseSchema,
  TokenFormat,
  type FollowRevocationsRequestSchema,
  type IntrospectRequestSchema,
  type IntrospectResponse,
  type TokenService,
  type WatchRevocationsResponse,
} from '../gen/tally/v1/token_service_pb.js';

export interface LocalViewOptions {
  /** Most active answers kept (default 10,000); the least recently used leaves first. */
  maxEntries?: number;
  /** Backoff before watching again after the stream broke (default 50 ms, doubling with full jitter up to 2 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Told when the view starts or stops answering, and why: for the calling service's logs and metrics. */
  onChange?: (change: LocalViewChange) => void;
}

export type LocalViewChange =
  | { watching: true }
  | { watching: false; reason: string; error?: unknown };

export interface LocalView {
  /** Whether introspect answers from the cache right now. */
  fresh(): boolean;
  /** Answers in the cache. */
  readonly size: number;
  /** Introspections answered from the cache, and asked of Tally, so far. */
  stats(): { hits: number; misses: number };
  /** Stops watching (the lease is released, the cache dropped); introspect asks Tally from then on. */
  close(): Promise<void>;
}

type TallyClient = Client<typeof TokenService>;
type IntrospectRequestInit = MessageInitShape<typeof IntrospectRequestSchema>;

interface Entry {
  readonly answer: IntrospectResponse;
  /** The token's expiry, on the store's clock. */
  readonly expiresAtMs: number;
  readonly jwt: boolean;
}

/** The stream of one watch: cut with abort; acknowledgements written to requests. */
interface Stream {
  readonly abort: AbortController;
  readonly requests: WritableIterable<MessageInitShape<typeof FollowRevocationsRequestSchema>>;
}

interface Watch {
  readonly id: string;
  readonly leaseMs: number;
  /** Taken off the lease, as replicas do, so that this view's lease always ends before Tally's. */
  readonly marginMs: number;
}

const DEFAULT_MAX_ENTRIES = 10_000;
const DEFAULT_INITIAL_BACKOFF_MS = 50;
const DEFAULT_MAX_BACKOFF_MS = 2_000;
const MAX_ACKNOWLEDGEMENTS_UNANSWERED = 4;
/** How long a stopped watch waits for Tally to end the stream after its release before cutting it. */
const RELEASE_GRACE_MS = 1_000;
/** How often the stream is checked for silence. */
const SILENCE_CHECK_MS = 25;
/** How long Tally may take to start a watch (grant the lease) before the client gives up and tries again. */
const START_TIMEOUT_MS = 5_000;
/** The answer of every hit that misses the asked audience or scopes, as Tally gives it: nothing but the verdict. */
const INACTIVE: IntrospectResponse = Object.freeze(create(IntrospectResponseSchema, { active: false }));

/** The scopes a revocation names, each of which an answer carries in the field of the same name. */
const SCOPES = ['tokenId', 'subject', 'clientId', 'sessionId'] as const;
type Scope = (typeof SCOPES)[number];

/** The tokens cached under one value of a scope: one alone (most subjects and sessions), or several. */
type Cached = string | Set<string>;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Whether a cached active answer is active for this request too: Tally's own audience and scope checks. */
function answerFor(answer: IntrospectResponse, request: IntrospectRequestInit): IntrospectResponse {
  if (request.audience && !answer.audience.includes(request.audience)) return INACTIVE;
  if (request.requiredScopes?.some((scope) => !answer.scopes.includes(scope))) return INACTIVE;
  return answer;
}

export interface StartedLocalView extends LocalView {
  introspect: TallyClient['introspect'];
}

export function startLocalView(client: TallyClient, options: LocalViewOptions = {}): StartedLocalView {
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError('localView.maxEntries must be a whole number of at least 1');
  const initialBackoffMs = options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
  const maxBackoffMs = options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;

  /** Token → its active answer; Map order is use order, so the first key is the least recently used. */
  const entries = new Map<string, Entry>();
  /**
   * Per scope, its value → the token (or tokens) cached under it, so a
   * revocation finds what it covers without a scan. Keyed by the answers'
   * own strings, so an index costs no string of its own.
   */
  const byScope: Record<Scope, Map<string, Cached>> = { tokenId: new Map(), subject: new Map(), clientId: new Map(), sessionId: new Map() };
  let watch: Watch | undefined;
  /** The sequence of the last message applied. */
  let applied = 0;
  /** Answer from the cache only once applied reaches it. */
  let catchUpTo = Number.POSITIVE_INFINITY;
  /** performance.now() until which the lease is live. */
  let trustedUntil = 0;
  /** Added to Date.now() to read the store's clock (an estimate a little ahead of it: expiry is judged early, never late). */
  let storeOffsetMs = 0;
  /** Bumped whenever the cache is dropped: answers asked before must not be kept. */
  let generation = 0;
  let hits = 0;
  let misses = 0;
  let closed = false;
  let stream: Stream | undefined;
  let lastHeard = 0;
  /** When each acknowledgement not answered yet was sent, oldest first: Tally answers them in order. */
  let unanswered: number[] = [];
  /** The sequence the last acknowledgement told. */
  let lastAcknowledged = -1;
  let acknowledgeAgain = false;
  /** Whether Tally renewed the current watch's lease at least once. */
  let renewed = false;

  const fresh = () => watch !== undefined && applied >= catchUpTo && performance.now() < trustedUntil;

  function index(scope: Scope, value: string, token: string): void {
    const index = byScope[scope];
    const present = index.get(value);
    if (present === undefined) index.set(value, token);
    else if (typeof present === 'string') index.set(value, new Set([present, token]));
    else present.add(token);
  }

  function unindex(scope: Scope, value: string, token: string): void {
    const index = byScope[scope];
    const present = index.get(value);
    if (present === token) index.delete(value);
    else if (typeof present === 'object') {
      present.delete(token);
      if (present.size === 1) index.set(value, present.values().next().value!);
    }
  }

  function forget(token: string): void {
    const entry = entries.get(token);
    if (entry === undefined) return;
    entries.delete(token);
    for (const scope of SCOPES) if (entry.answer[scope] !== '') unindex(scope, entry.answer[scope], token);
  }

  function remember(token: string, answer: IntrospectResponse): void {
    forget(token);
    const expiresAtMs = answer.expiresAt === undefined ? 0 : timestampMs(answer.expiresAt);
    // Frozen: every hit hands out this very object, and no caller may change what the next one gets.
    entries.set(token, { answer: deepFreeze(answer), expiresAtMs, jwt: answer.format === TokenFormat.JWT });
    // An empty client or session names none: no revocation can name it.
    for (const scope of SCOPES) if (answer[scope] !== '') index(scope, answer[scope], token);
    if (entries.size > maxEntries) forget(entries.keys().next().value!);
  }

  function forgetScope(scope: Scope, value: string): void {
    const present = byScope[scope].get(value);
    if (present === undefined) return;
    for (const token of typeof present === 'string' ? [present] : [...present]) forget(token);
  }

  function forgetJwts(): void {
    for (const [token, entry] of entries) if (entry.jwt) forget(token);
  }

  function drop(): void {
    entries.clear();
    for (const scope of SCOPES) byScope[scope].clear();
  }

  /**
   * Stops answering from the cache at once and drops it. The lease is
   * released, since nothing relies on it now: the release goes on the stream,
   * and Tally ends the watch; the stream is cut if that does not come soon.
   */
  function stopWatching(reason: string, error?: unknown): void {
    const released = watch;
    // Told once per watch: its stream's own end, after a stop made elsewhere, is no news.
    const current = stream;
    generation += 1;
    watch = undefined;
    trustedUntil = 0;
    catchUpTo = Number.POSITIVE_INFINITY;
    applied = 0;
    drop();
    stream = undefined;
    if (current === undefined) return;
    if (released !== undefined && error === undefined) {
      current.requests.write({ release: true }).catch(() => {});
      current.requests.close();
      setTimeout(() => current.abort.abort(), RELEASE_GRACE_MS).unref();
    } else {
      current.abort.abort();
    }
    options.onChange?.({ watching: false, reason, error });
  }

  function apply(message: WatchRevocationsResponse): void {
    const sequence = Number(message.sequence);
    if (sequence < applied) throw new Error(`the revocation stream went back from ${applied} to ${sequence}`);
    const { event } = message;
    if (event.case === 'revoked') {
      const { scope } = event.value;
      if (scope.case === undefined) drop();
      else if (scope.case === 'kid') forgetJwts();
      else forgetScope(scope.case, scope.value);
    } else if (event.case === 'keysChanged') {
      forgetJwts();
    }
    applied = sequence;
  }

  /**
   * Tells Tally what has been applied, on the stream: at once when it is more
   * than was last told (a Revoke may be waiting for it), a few unanswered at a
   * time; a progress message that changes nothing waits for the one unanswered.
   */
  function acknowledge(): void {
    const current = stream;
    if (watch === undefined || current === undefined) return;
    if (applied === lastAcknowledged && unanswered.length > 0) return;
    if (unanswered.length >= MAX_ACKNOWLEDGEMENTS_UNANSWERED) {
      acknowledgeAgain = true;
      return;
    }
    unanswered.push(performance.now());
    lastAcknowledged = applied;
    current.requests.write({ sequence: BigInt(applied) }).catch(() => {});
  }

  /** Tally's answer to the oldest acknowledgement not answered yet. */
  function answered(held: boolean): void {
    const sentAt = unanswered.shift();
    const current = watch;
    if (sentAt === undefined || current === undefined) throw new Error('Tally answered an acknowledgement that was not sent');
    if (!held) {
      stopWatching('Tally no longer held the lease (it lapsed, or the callers file changed)');
      return;
    }
    // Tally renewed after this was sent, so its lease ends after this.
    trustedUntil = Math.max(trustedUntil, sentAt + current.leaseMs - current.marginMs);
    renewed = true;
    if (acknowledgeAgain) {
      acknowledgeAgain = false;
      acknowledge();
    }
  }

  /** One watch, from the request to its end; true when Tally renewed its lease at least once (it worked). */
  async function watchOnce(): Promise<boolean> {
    const current: Stream = { abort: new AbortController(), requests: createWritableIterable() };
    stream = current;
    unanswered = [];
    acknowledgeAgain = false;
    const sentAt = performance.now();
    const sentAtWall = Date.now();
    // Tally sends progress every quarter lease while it keeps up. A lease of silence means it
    // does not, or the stream is dead; shorter gaps happen on a busy machine and cost nothing, since
    // the lease, not the silence, decides what is answered from the cache.
    let started = false;
    renewed = false;
    let lastCheck = performance.now();
    const silence = setInterval(() => {
      const now = performance.now();
      // A check that comes late means this process was not running: what arrived meanwhile is still unread, so judge next time.
      const stalled = now - lastCheck > 4 * SILENCE_CHECK_MS;
      lastCheck = now;
      if (stream !== current || stalled) return;
      if (watch !== undefined && now - lastHeard > watch.leaseMs) stopWatching('the revocation stream fell silent');
      else if (!started && now - sentAt > START_TIMEOUT_MS) stopWatching('Tally did not start the revocation stream in time');
    }, SILENCE_CHECK_MS);
    silence.unref();
    try {
      for await (const response of client.followRevocations(current.requests, { signal: current.abort.signal, timeoutMs: 0 } satisfies CallOptions)) {
        // Stopped already: what still comes is only the way out.
        if (stream !== current) continue;
        lastHeard = performance.now();
        if (response.message.case === 'renewed') {
          answered(response.message.value.held);
          continue;
        }
        if (response.message.case !== 'watch') continue;
        const message = response.message.value;
        if (message.event.case === 'started') {
          if (started) throw new Error('the revocation stream started twice');
          started = true;
          const start = message.event.value;
          const leaseMs = start.lease === undefined ? 0 : durationMs(start.lease);
          applied = Number(message.sequence);
          catchUpTo = Number(start.catchUpTo);
          storeOffsetMs = start.storeTime === undefined ? 0 : timestampMs(start.storeTime) - sentAtWall;
          // The grant came after the request was sent, so Tally's lease ends after this.
          trustedUntil = sentAt + leaseMs - Math.max(10, leaseMs / 20);
          watch = { id: start.watchId, leaseMs, marginMs: Math.max(10, leaseMs / 20) };
          lastAcknowledged = -1;
          options.onChange?.({ watching: true });
        } else {
          if (watch === undefined) throw new Error('the revocation stream did not start with `started`');
          apply(message);
        }
        acknowledge();
      }
      // A stop made elsewhere (silence, a lost lease, close) has already said why.
      if (stream === current) stopWatching('Tally ended the revocation stream');
    } catch (error) {
      if (stream === current) stopWatching('the revocation stream broke', error);
    } finally {
      clearInterval(silence);
    }
    return renewed;
  }

  const running = (async () => {
    for (let attempt = 0; !closed; attempt++) {
      // A watch that worked starts the backoff over; one that keeps failing backs off further each time.
      if (await watchOnce()) attempt = 0;
      if (closed) return;
      const ceiling = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(attempt, 16));
      await new Promise((resolve) => setTimeout(resolve, Math.round(Math.random() * ceiling)));
    }
  })();

  return {
    introspect(request, callOptions) {
      const token = request.token ?? '';
      if (fresh()) {
        const entry = entries.get(token);
        if (entry !== undefined) {
          if (Date.now() + storeOffsetMs < entry.expiresAtMs) {
            entries.delete(token);
            entries.set(token, entry);
            hits += 1;
            return Promise.resolve(answerFor(entry.answer, request));
          }
          forget(token);
        }
      }
      misses += 1;
      const asked = generation;
      return client.introspect(request, callOptions).then((answer) => {
        // Not kept if the cache was dropped meanwhile, or the answer predates an event applied.
        if (answer.active && asked === generation && watch !== undefined && Number(answer.revocationSequence) >= applied) remember(token, answer);
        return answer;
      });
    },
    fresh,
    get size() {
      return entries.size;
    },
    stats: () => ({ hits, misses }),
    async close() {
      closed = true;
      stopWatching('closed');
      await running;
    },
  };
}
