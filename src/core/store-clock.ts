// The one clock every replica judges times by: the store's. Each replica
// reads the store's time now and then and keeps the difference from its own
// wall clock, so token lifetimes, expiry, mark keep times and key retirement
// mean the same instant on every replica, whatever their own clocks say (a
// replica minutes fast or slow stamps and judges exactly as the others do).
//
// A reading is taken between two readings of the local clock; half the round
// trip bounds its error. Once there is a good reading, one whose error could
// exceed half the clock skew is not used, so replicas agree to within the
// skew. The first reading is always used: anything beats the local clock.
import type { Clock, Store } from './ports.js';

export interface StoreClock extends Clock {
  /** Reads the store's time and re-bases this clock on it; rejects when the store does not answer. */
  sync(): Promise<void>;
  /** The local clock minus the store's at the last good reading (positive: this replica runs fast). */
  localOffsetMs(): number;
}

export interface StoreClockOptions {
  store: Pick<Store, 'time'>;
  local: Clock;
  /** Readings with a larger error than this (half the round trip) are not used. */
  maxErrorMs: number;
}

export function createStoreClock(options: StoreClockOptions): StoreClock {
  const { store, local } = options;
  // Until the first reading, the local clock: start() syncs before anything is judged.
  let correctionMs = 0;
  let synced = false;
  return {
    now: () => local.now() + correctionMs,
    async sync() {
      const before = local.now();
      const storeTime = await store.time();
      const after = local.now();
      if (synced && (after - before) / 2 > options.maxErrorMs) return;
      correctionMs = storeTime - (before + after) / 2;
      synced = true;
    },
    localOffsetMs: () => (correctionMs === 0 ? 0 : -correctionMs),
  };
}
