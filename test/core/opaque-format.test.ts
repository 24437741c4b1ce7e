import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  OPAQUE_PREFIX,
  OPAQUE_TOKEN_LENGTH,
  isWellFormedOpaqueToken,
  mintOpaqueToken,
  opaqueTokenId,
} from '../../src/core/formats/opaque.js';
import { systemRandomness } from '../../src/core/system.js';

const key = new Uint8Array(randomBytes(32));

describe('opaque token format', () => {
  it('mints prefixed, fixed-length, well-formed tokens', () => {
    const token = mintOpaqueToken(systemRandomness);
    expect(token.startsWith(OPAQUE_PREFIX)).toBe(true);
    expect(token).toHaveLength(OPAQUE_TOKEN_LENGTH);
    expect(token).toMatch(/^tly_[0-9A-Za-z]+$/);
    expect(isWellFormedOpaqueToken(token)).toBe(true);
  });

  it('carries all 256 random bits: the all-zero and all-one inputs give distinct, well-formed tokens', () => {
    const zeros = mintOpaqueToken({ bytes: (n) => new Uint8Array(n) });
    const ones = mintOpaqueToken({ bytes: (n) => new Uint8Array(n).fill(0xff) });
    expect(zeros).not.toBe(ones);
    expect(isWellFormedOpaqueToken(zeros)).toBe(true);
    expect(isWellFormedOpaqueToken(ones)).toBe(true);
  });

  it('refuses a token with any single character changed (the checksum catches it)', () => {
    const token = mintOpaqueToken(systemRandomness);
    for (let i = OPAQUE_PREFIX.length; i < token.length; i++) {
      const swapped = token[i] === 'a' ? 'b' : 'a';
      expect(isWellFormedOpaqueToken(token.slice(0, i) + swapped + token.slice(i + 1)), `position ${i}`).toBe(false);
    }
  });

  it.each([
    ['empty', ''],
    ['prefix only', 'tly_'],
    ['too short', 'tly_abc'],
    ['wrong prefix', 'xyz_' + 'a'.repeat(49)],
    ['bad characters', 'tly_' + '-'.repeat(49)],
    ['trailing newline', mintOpaqueToken(systemRandomness) + '\n'],
  ])('refuses %s', (_name, token) => {
    expect(isWellFormedOpaqueToken(token)).toBe(false);
  });

  it('derives a stable token id that depends on the hash key', () => {
    const token = mintOpaqueToken(systemRandomness);
    expect(opaqueTokenId(token, key)).toBe(opaqueTokenId(token, key));
    expect(opaqueTokenId(token, key)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(opaqueTokenId(token, new Uint8Array(randomBytes(32)))).not.toBe(opaqueTokenId(token, key));
    expect(opaqueTokenId(token, key)).not.toContain(token.slice(4, 12));
  });
});
