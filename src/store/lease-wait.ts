// The wait every store's revokeScope ends with: until no lease holder (a
// replica answering from its view, or a client watching revocations) is
// still to apply the revocation. Written once for both engines.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreUnavailableError } from '../core/errors.js';

/**
 * Waits until pending(fenceMs) answers 0: no holder with a live lease is
 * still to apply the revocation. A holder that neither applies it nor lets
 * its lease lapse within twice the lease time means something is wrong: the
 * revocation is recorded but not confirmed, and the caller hears so.
 */
export async function untilLeaseHoldersApplied(pending: (fenceMs: number) => Promise<number>, leaseMs: number): Promise<void> {
  const deadline = performance.now() + 2 * leaseMs;
  for (let attempt = 0; ; attempt++) {
    if ((await pending(leaseMs)) === 0) return;
    if (performance.now() > deadline) {
      throw new StoreUnavailableError('the revocation is recorded but not every replica has confirmed it yet; retry');
    }
    // The first checks come fast: a healthy holder applies an event within a round trip or two.
    await (attempt < 4 ? new Promise((resolve) => setImmediate(resolve)) : sleep(1));
  }
}
