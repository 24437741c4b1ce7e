// The store clock: this replica's clock plus its measured offset from the
// store's, so that every replica judges times on one clock.
import { describe, expect, it } from 'vitest';
import { createStoreClock } from '../../src/core/store-clock.js';
import { createMemoryStore } from '../../src/store/memory/memory-store.js';
import { createFakeClock } from '../support/fake-clock.js';
import { startReplica } from './fixtures.js';

/** A store whose clock is offsetMs from local, answering after roundTripMs (half each way). */
function storeAt(local: ReturnType<typeof createFakeClock>, offsetMs: number, roundTrip: { ms: number }) {
  return {
    async time() {
      local.advance(roundTrip.ms / 2);
      const answer = local.now() + offsetMs;
      local.advance(roundTrip.ms / 2);
      return answer;
    },
  };
}

describe('the store clock', () => {
  it.each([+7 * 60_000, -7 * 60_000])('tells the store\'s time on a replica %i ms off it', async (offsetMs) => {
    const local = createFakeClock();
    const clock = createStoreClock({ store: storeAt(local, offsetMs, { ms: 4 }), local, maxErrorMs: 500 });
    await clock.sync();
    expect(clock.now()).toBe(local.now() + offsetMs);
    expect(clock.localOffsetMs()).toBe(-offsetMs);
    local.advance(10_000);
    expect(clock.now()).toBe(local.now() + offsetMs);
  });

  it('keeps its last good reading over one whose round trip makes it too uncertain', async () => {
    const local = createFakeClock();
    const roundTrip = { ms: 4 };
    let offsetMs = 60_000;
    const store = { time: async () => storeAt(local, offsetMs, roundTrip).time() };
    const clock = createStoreClock({ store, local, maxErrorMs: 500 });
    await clock.sync();
    offsetMs = 0;
    roundTrip.ms = 2_000;
    await clock.sync();
    expect(clock.localOffsetMs()).toBe(-60_000);
    roundTrip.ms = 4;
    await clock.sync();
    expect(clock.localOffsetMs()).toBe(0);
  });

  it('uses its first reading however slow, rather than the local clock', async () => {
    const local = createFakeClock();
    const clock = createStoreClock({ store: storeAt(local, 30_000, { ms: 5_000 }), local, maxErrorMs: 500 });
    await clock.sync();
    expect(clock.localOffsetMs()).toBe(-30_000);
  });
});

describe('a token service on a replica whose clock is off the store\'s', () => {
  it('says so when it is more than the clock skew off, and stamps tokens on the store\'s clock', async () => {
    const storeClock = createFakeClock();
    const store = createMemoryStore({ clock: storeClock });
    const offsets: number[] = [];
    const fast = await startReplica({ store, clock: createFakeClock(storeClock.now() + 5 * 60_000), onClockOffset: (ms) => offsets.push(ms) });
    const close = await startReplica({ store, secrets: fast.secrets, clock: createFakeClock(storeClock.now() + 30_000), onClockOffset: (ms) => offsets.push(ms) });
    expect(offsets).toEqual([5 * 60_000]);
    const issued = await fast.service.issue({ subject: 'alice' });
    expect(issued.issuedAt).toBe(Math.floor(storeClock.now() / 1000) * 1000);
    for (const { service } of [fast, close]) await service.stop();
    await store.close();
  });
});
