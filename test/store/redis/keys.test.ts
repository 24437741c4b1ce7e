import { describe, expect, it } from 'vitest';
import { createKeyNames, markField } from '../../../src/store/redis/keys.js';

// Redis Cluster hashes only the text between the first "{" and the next "}".
function slotTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open < 0 || close < 0 || close === open + 1 ? key : key.slice(open + 1, close);
}

describe('Redis key names', () => {
  const keys = createKeyNames('tally:');

  it('puts everything a revocation touches in one slot, so one script can do it atomically', () => {
    const revocationKeys = [keys.revocationSequence, keys.marks, keys.markExpiry, keys.events, keys.leases, keys.keyRing, keys.identity];
    expect(new Set(revocationKeys.map(slotTag))).toEqual(new Set(['revocations']));
  });

  it('keys token records by the whole key, with no slot tag, so they spread over the slots', () => {
    expect(keys.token('abc')).toBe('tally:tok:abc');
    expect(keys.token('abc')).not.toContain('{');
  });

  it.each(['', '{', '}', '{}}', 'a{b}c', 'x:{y}', 'ü😀', 'a\u0000b', 'v'.repeat(65)])('digests a token id Tally would not make (%j), so no brace reaches the key', (tokenId) => {
    const key = keys.token(tokenId);
    expect(key).toMatch(/^tally:tok:~[A-Za-z0-9_-]{43}$/);
    expect(key).not.toBe(keys.token(`${tokenId}x`));
  });

  it('keeps mark fields of different scopes apart, whatever the value', () => {
    const values = ['', '{', '}', ':', 'a:b', 'subject:x', 'ü😀', 'a\u0000b'];
    const fields = values.flatMap((value) => (['subject', 'client', 'session', 'token'] as const).map((scope) => markField(scope, value)));
    expect(new Set(fields).size).toBe(fields.length);
  });

  it('puts every key under the prefix, so deployments sharing a Redis stay apart', () => {
    const other = createKeyNames('other:');
    for (const [names, prefix] of [[keys, 'tally:'], [other, 'other:']] as const) {
      for (const key of [names.token('t'), names.revocationSequence, names.marks, names.markExpiry, names.events, names.leases, names.keyRing, names.identity, names.secretFingerprint]) {
        expect(key.startsWith(prefix)).toBe(true);
      }
    }
  });
});
