// The serving side of WatchRevocations on the memory store: what a holder is
// told and when a watch ends. The stream on both ports, audience limits and
// the leases Revoke waits for: test/client/local-view.test.ts and
// test/e2e/client-view.test.ts.

import { describe, expect, it } from 'vitest';
import { StoreUnavailableError, FailedPreconditionError, ResourceExhaustedError } from '../../src/core/errors.js';
import type { Store } from '../../src/core/ports.js';
import { createRevocationWatch, type WatchMessage } from '../../src/core/revocation-watch.js';
import { createMemoryStore } from '../../src/store/memory/memory-store.js';

const HOLDER = { name: 'orders' };

/** Reads a watch in the background, keeping every message and how it ended. */
function read(iterator: AsyncGenerator<WatchMessage>) {
  const messages: WatchMessage[] = [];
  const ended = (async () => {
    for await (const message of iterator) messages.push(message);
  })().then(
    () => 'ended' as const,
    (error: unknown) => error,
  );
  return { messages, ended };
}

async function until(condition: () => boolean, withinMs = 2_000): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('the condition did not hold in time');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

describe('a revocation watch', () => {
  it('starts with the lease, then tells every revocation with its number, and progress while nothing happens', async () => {
    const store = createMemoryStore({ holderLeaseMs: 200 });
    const watch = createRevocationWatch({ store, progressIntervalMs: 20 });
    const abort = new AbortController();
    const { messages, ended } = read(watch.watch(HOLDER, abort.signal));
    await until(() => messages.length > 0);
    expect(messages[0]).toMatchObject({ kind: 'started', sequence: 0, leaseMs: 200, catchUpTo: 0 });
    const started = messages[0] as Extract<WatchMessage, { kind: 'started' }>;
    expect(await watch.acknowledge(HOLDER, started.watchId, 0, false)).toBe(true);
    const revoking = store.revokeScope('subject', 'alice', 60_000);
    await until(() => messages.some((message) => message.kind === 'revoked'));
    expect(messages.find((message) => message.kind === 'revoked')).toEqual({ kind: 'revoked', sequence: 1, scope: 'subject', value: 'alice' });
    expect(await watch.acknowledge(HOLDER, started.watchId, 1, false)).toBe(true);
    expect(await revoking).toBe(1);
    await until(() => messages.filter((message) => message.kind === 'progress').length >= 2);
    expect(messages.filter((message) => message.kind === 'progress').every((message) => message.sequence === 1)).toBe(true);
    abort.abort();
    expect(await ended).toBe('ended');
  });

  it('renews only the lease of the caller that opened the watch, with the audiences it had', async () => {
    const store = createMemoryStore();
    const watch = createRevocationWatch({ store });
    const abort = new AbortController();
    const { messages } = read(watch.watch({ name: 'orders', audiences: ['orders'] }, abort.signal));
    await until(() => messages.length > 0);
    const { watchId } = messages[0] as Extract<WatchMessage, { kind: 'started' }>;
    expect(await watch.acknowledge({ name: 'billing', audiences: ['orders'] }, watchId, 0, false)).toBe(false);
    // The callers file changed its audiences: the lease it had is not its own any more.
    expect(await watch.acknowledge({ name: 'orders', audiences: ['orders', 'billing'] }, watchId, 0, false)).toBe(false);
    expect(await watch.acknowledge({ name: 'orders', audiences: ['orders'] }, watchId, 0, false)).toBe(true);
    abort.abort();
  });

  it('ends quietly when the replica drains, and with UNAVAILABLE when events were lost', async () => {
    const store = createMemoryStore();
    const watch = createRevocationWatch({ store });
    const draining = read(watch.watch(HOLDER, new AbortController().signal));
    const losing = read(watch.watch(HOLDER, new AbortController().signal));
    await until(() => draining.messages.length > 0 && losing.messages.length > 0);
    watch.endAll();
    expect(await draining.ended).toBe('ended');
    // A new watch after the drain, then the store closes under it: what came after cannot be told.
    const lost = read(watch.watch(HOLDER, new AbortController().signal));
    await until(() => lost.messages.length > 0);
    await store.close();
    expect(await lost.ended).toBeInstanceOf(StoreUnavailableError);
  });

  it('cuts off a holder that does not read', async () => {
    const store = createMemoryStore({ holderLeaseMs: 100 });
    const watch = createRevocationWatch({ store, maxQueuedEvents: 5 });
    const iterator = watch.watch(HOLDER, new AbortController().signal);
    expect((await iterator.next()).value).toMatchObject({ kind: 'started' });
    // Unacknowledged, the holder's lease lapses and these stop waiting for it.
    for (let i = 0; i < 8; i++) await store.revokeScope('subject', `user-${i}`, 60_000);
    const messages: WatchMessage[] = [];
    const error = await (async () => {
      for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) messages.push(next.value);
    })().catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(ResourceExhaustedError);
    expect(messages.length).toBeLessThanOrEqual(5);
  });

  it('refuses to start on a store that follows no events', async () => {
    const { holders: _none, ...withoutHolders } = createMemoryStore();
    const watch = createRevocationWatch({ store: withoutHolders as Store });
    await expect(watch.watch(HOLDER, new AbortController().signal).next()).rejects.toBeInstanceOf(FailedPreconditionError);
  });
});
