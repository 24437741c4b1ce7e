// A real memory store with two faults a test can switch on: every call held
// until released (a slow store, for deadlines and draining), or every call
// failing as unavailable (a store that is down, for readiness). Redis faults
// are tested against real redis-server processes; this is for the transports.

import { StoreUnavailableError } from '../../src/core/errors.js';
import type { Store } from '../../src/core/ports.js';
import { createMemoryStore } from '../../src/store/index.js';

export interface ControllableStore {
  store: Store;
  /** From now on calls wait until release(). */
  hold(): void;
  release(): void;
  /** From now on calls fail with StoreUnavailableError (true) or work again (false). */
  setUnavailable(unavailable: boolean): void;
  /** How many calls are waiting on hold(). */
  waiting(): number;
}

export function createControllableStore(): ControllableStore {
  const inner = createMemoryStore();
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  let unavailable = false;
  let waiting = 0;

  async function pass(): Promise<void> {
    if (gate !== undefined) {
      waiting += 1;
      try {
        await gate.promise;
      } finally {
        waiting -= 1;
      }
    }
    if (unavailable) throw new StoreUnavailableError();
  }

  const store = new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || property === 'close') return value;
      // Memory answers at once only while the store works: held or down, every answer waits or fails.
      if (property === 'localView') return () => (gate === undefined && !unavailable ? (value as () => unknown).apply(target) : undefined);
      return async (...args: unknown[]) => {
        await pass();
        return (value as (...parameters: unknown[]) => unknown).apply(target, args);
      };
    },
  });

  return {
    store,
    hold() {
      let open!: () => void;
      const promise = new Promise<void>((resolve) => {
        open = resolve;
      });
      gate = { promise, open };
    },
    release() {
      gate?.open();
      gate = undefined;
    },
    setUnavailable(value) {
      unavailable = value;
    },
    waiting: () => waiting,
  };
}
