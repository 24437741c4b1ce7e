import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { openPrivateKey, sealPrivateKey } from '../../src/core/keys/key-encryption.js';
import { systemRandomness } from '../../src/core/system.js';

const key = new Uint8Array(randomBytes(32));
const secret = '{"kty":"OKP","d":"private"}';

describe('private key sealing', () => {
  it('opens what it sealed, and the sealed text does not show the key', () => {
    const sealed = sealPrivateKey(secret, 'kid-1', key, systemRandomness);
    expect(sealed).not.toContain('private');
    expect(openPrivateKey(sealed, 'kid-1', key)).toBe(secret);
  });

  it('refuses to open under another master-derived key', () => {
    const sealed = sealPrivateKey(secret, 'kid-1', key, systemRandomness);
    expect(() => openPrivateKey(sealed, 'kid-1', new Uint8Array(randomBytes(32)))).toThrow();
  });

  it('refuses a sealed key moved under another kid', () => {
    const sealed = sealPrivateKey(secret, 'kid-1', key, systemRandomness);
    expect(() => openPrivateKey(sealed, 'kid-2', key)).toThrow();
  });

  it('refuses a sealed key with one byte flipped', () => {
    const bytes = Buffer.from(sealPrivateKey(secret, 'kid-1', key, systemRandomness), 'base64');
    bytes[20] = bytes[20]! ^ 1;
    expect(() => openPrivateKey(bytes.toString('base64'), 'kid-1', key)).toThrow();
  });

  it('refuses a truncated sealed key', () => {
    expect(() => openPrivateKey('AAAA', 'kid-1', key)).toThrow(/too short/);
  });
});
