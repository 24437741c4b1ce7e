// A caller that keeps introspecting tokens that do not exist is scanning for
// valid ones. Each caller gets a token bucket of such misses; while it is
// empty, the caller's introspections are refused with RESOURCE_EXHAUSTED
// before any work is done. Good tokens, expired and revoked ones do not count:
// they are what a well-behaved caller sees.
import type { Clock } from '../core/ports.js';
import type { InactiveReason } from '../core/types.js';

export interface ScanLimiterOptions {
  /** Misses a caller may have per second, sustained. 0 turns the limit off. */
  missesPerSecond: number;
  /** Misses a caller may have in a burst. */
  burst: number;
  clock: Clock;
}

/** Answers that a scanner gets and a well-behaved caller does not. */
const MISSES: ReadonlySet<InactiveReason> = new Set<InactiveReason>([
  'malformed', 'unknown', 'bad_signature', 'unknown_key', 'caller_audience',
]);

export function isMiss(reason: InactiveReason): boolean {
  return MISSES.has(reason);
}

interface Bucket {
  level: number;
  updatedAt: number;
}

/** Callers are few and named in the callers file, so the map stays small; buckets refill and are dropped when full. */
export interface ScanLimiter {
  /** Whether the caller may introspect now. */
  allows(caller: string): boolean;
  /** Counts a miss against the caller. */
  recordMiss(caller: string): void;
}

export function createScanLimiter(options: ScanLimiterOptions): ScanLimiter {
  const buckets = new Map<string, Bucket>();

  function current(caller: string): Bucket | undefined {
    const bucket = buckets.get(caller);
    if (bucket === undefined) return undefined;
    const now = options.clock.now();
    bucket.level = Math.min(options.burst, bucket.level + ((now - bucket.updatedAt) / 1000) * options.missesPerSecond);
    bucket.updatedAt = now;
    if (bucket.level >= options.burst) {
      buckets.delete(caller);
      return undefined;
    }
    return bucket;
  }

  return {
    allows(caller) {
      if (options.missesPerSecond === 0) return true;
      const bucket = current(caller);
      return bucket === undefined || bucket.level >= 1;
    },
    recordMiss(caller) {
      if (options.missesPerSecond === 0) return;
      const bucket = current(caller) ?? { level: options.burst, updatedAt: options.clock.now() };
      bucket.level = Math.max(0, bucket.level - 1);
      buckets.set(caller, bucket);
    },
  };
}
