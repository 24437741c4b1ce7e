import type { Clock } from '../../src/core/ports.js';

/** A clock that only moves when a test moves it. */
export interface FakeClock extends Clock {
  advance(milliseconds: number): void;
  set(epochMilliseconds: number): void;
}

export function createFakeClock(start = Date.UTC(2030, 0, 1)): FakeClock {
  let current = start;
  return {
    now: () => current,
    advance(milliseconds) {
      current += milliseconds;
    },
    set(epochMilliseconds) {
      current = epochMilliseconds;
    },
  };
}
