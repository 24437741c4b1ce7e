import { createMemoryStore } from '../../src/store/memory/memory-store.js';
import { createFakeClock } from '../support/fake-clock.js';
import { describeStoreConformance } from './conformance.js';

describeStoreConformance('memory', async () => {
  const clock = createFakeClock();
  return {
    store: createMemoryStore({ clock, holderLeaseMs: 300 }),
    clock,
    passTime: async (ms) => clock.advance(ms),
  };
});
