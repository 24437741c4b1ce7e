// A Store that reports how long each operation took and whether it failed,
// around any engine. Kept out of the engines (one decorator for all of them)
// and out of the core (which knows no metrics): main.ts wraps the store once.

import type { Store } from '../core/ports.js';

/** Told of every store operation as it settles. */
export type StoreObserver = (operation: string, seconds: number, failed: boolean) => void;

type Operation = Exclude<keyof Store, 'onKeyRingChange' | 'holders' | 'close'>;

const OPERATIONS: readonly Operation[] = [
  'revocationSequence',
  'putToken',
  'getToken',
  'revokeScope',
  'revocationMark',
  'readKeyRing',
  'writeKeyRing',
  'checkSecretFingerprint',
  'time',
  'ping',
];

export function instrumentStore(store: Store, observe: StoreObserver): Store {
  const instrumented: Partial<Record<Operation, unknown>> = {};
  for (const operation of OPERATIONS) {
    const original = (store[operation] as (...args: unknown[]) => Promise<unknown>).bind(store);
    instrumented[operation] = async (...args: unknown[]) => {
      const started = performance.now();
      try {
        const result = await original(...args);
        observe(operation, (performance.now() - started) / 1000, false);
        return result;
      } catch (error) {
        observe(operation, (performance.now() - started) / 1000, true);
        throw error;
      }
    };
  }
  return {
    ...(instrumented as Pick<Store, Operation>),
    ...(store.onKeyRingChange === undefined ? {} : { onKeyRingChange: store.onKeyRingChange.bind(store) }),
    ...(store.holders === undefined ? {} : { holders: store.holders }),
    close: () => store.close(),
  };
}
