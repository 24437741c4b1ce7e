import { describe, expect, it } from 'vitest';
import { createScanLimiter, isMiss } from '../../src/auth/scan-limiter.js';
import { createFakeClock } from '../support/fake-clock.js';

describe('the scan limiter', () => {
  it('refuses a caller once its burst of misses is spent, and lets it back as the bucket refills', () => {
    const clock = createFakeClock();
    const limiter = createScanLimiter({ missesPerSecond: 2, burst: 5, clock });
    for (let i = 0; i < 5; i++) {
      expect(limiter.allows('scanner')).toBe(true);
      limiter.recordMiss('scanner');
    }
    expect(limiter.allows('scanner')).toBe(false);
    expect(limiter.allows('honest')).toBe(true);
    clock.advance(499);
    expect(limiter.allows('scanner')).toBe(false);
    clock.advance(1);
    expect(limiter.allows('scanner')).toBe(true);
  });

  it('counts unknown, malformed and foreign tokens, not expired or revoked ones', () => {
    expect(['unknown', 'malformed', 'bad_signature', 'unknown_key', 'caller_audience'].every((reason) => isMiss(reason as never))).toBe(true);
    expect(['expired', 'revoked', 'wrong_audience', 'missing_scope', 'not_yet_valid'].some((reason) => isMiss(reason as never))).toBe(false);
  });

  it('never refuses when turned off', () => {
    const limiter = createScanLimiter({ missesPerSecond: 0, burst: 0, clock: createFakeClock() });
    for (let i = 0; i < 100; i++) limiter.recordMiss('scanner');
    expect(limiter.allows('scanner')).toBe(true);
  });
});
