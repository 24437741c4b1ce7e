// A Store that reports how long each operation took and whether it failed,
// around any engine, and with tracing on runs each operation as a step of the
// call in progress (a child span). Kept out of the engines (one decorator for
// all of them) and out of the core (which knows no metrics and no tracing):
// main.ts wraps the store once.

import type { Store, TraceStep } from '../core/ports.js';

/** Told of every store operation as it settles. */
export type StoreObserver = (operation: string, seconds: number, failed: boolean) => void;

type Operation = Exclude<keyof Store, 'onKeyRingChange' | 'localView' | 'holders' | 'close'>;

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

/** traceStep unset (tracing off): the operations are wrapped for metrics only, with no check per call. */
export function instrumentStore(store: Store, observe: StoreObserver, traceStep?: TraceStep): Store {
  const instrumented: Partial<Record<Operation, unknown>> = {};
  for (const operation of OPERATIONS) {
    const original = (store[operation] as (...args: unknown[]) => Promise<unknown>).bind(store);
    const measured = async (...args: unknown[]) => {
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
    const name = `store ${operation}`;
    const attributes = { 'tally.store.operation': operation };
    instrumented[operation] = traceStep === undefined ? measured : (...args: unknown[]) => traceStep(name, attributes, () => measured(...args));
  }
  return {
    ...(instrumented as Pick<Store, Operation>),
    ...(store.onKeyRingChange === undefined ? {} : { onKeyRingChange: store.onKeyRingChange.bind(store) }),
    // Reads from memory are no store operations: nothing to time.
    ...(store.localView === undefined ? {} : { localView: store.localView.bind(store) }),
    ...(store.holders === undefined ? {} : { holders: store.holders }),
    close: () => store.close(),
  };
}
