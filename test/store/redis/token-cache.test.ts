// The replica's bounded record cache: what it keeps when room is needed, and
// that it never hands out an expired record.
import { describe, expect, it } from 'vitest';
import { createTokenCache } from '../../../src/store/redis/token-cache.js';
import { createFakeClock } from '../../support/fake-clock.js';
import { tokenRecord } from '../../support/store-records.js';

describe('the token cache', () => {
  const clock = createFakeClock(1_000_000);
  const record = (tokenId: string, expiresAt = 2_000_000) => tokenRecord({ tokenId, expiresAt }, clock.now());

  it('keeps a record used since it was cached and lets the oldest unused one go', () => {
    const cache = createTokenCache(3, clock);
    for (const id of ['a', 'b', 'c']) cache.set(record(id));
    expect(cache.get('a')?.tokenId).toBe('a');
    cache.set(record('d'));
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect(['a', 'c', 'd'].map((id) => cache.get(id)?.tokenId)).toEqual(['a', 'c', 'd']);
  });

  it('stays within its capacity whatever is used', () => {
    const cache = createTokenCache(100, clock);
    for (let i = 0; i < 1_000; i++) {
      cache.set(record(`t${i}`));
      for (let j = Math.max(0, i - 50); j <= i; j += 7) cache.get(`t${j}`);
      expect(cache.size).toBeLessThanOrEqual(100);
    }
    // The newest record is always there.
    expect(cache.get('t999')?.tokenId).toBe('t999');
  });

  it('never answers with an expired record, and shares one frozen copy', () => {
    const cache = createTokenCache(10, clock);
    const original = record('x', clock.now() + 1_000);
    cache.set(original);
    const first = cache.get('x');
    expect(first).toEqual(original);
    expect(first).not.toBe(original);
    expect(Object.isFrozen(first)).toBe(true);
    expect(cache.get('x')).toBe(first);
    clock.advance(1_001);
    expect(cache.get('x')).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
