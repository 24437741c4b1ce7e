import { describe, expect, it } from 'vitest';
import { createKeyNames } from '../../../src/store/redis/keys.js';

// Redis Cluster hashes only the text between the first "{" and the next "}".
function slotTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open < 0 || close < 0 || close === open + 1 ? key : key.slice(open + 1, close);
}

describe('Redis key names', () => {
  const keys = createKeyNames('tally:');
  const awkwardValues = ['', '{', '}', '{}', '}{', 'a{b}c', 'x:{y}', 'ü😀', 'a\u0000b', 'v'.repeat(10_000)];

  it.each(awkwardValues)('gives mark keys one slot tag, a digest, whatever the value (%j)', (value) => {
    const key = keys.mark('subject', value);
    expect(key).toMatch(/^tally:mark:subject:\{[A-Za-z0-9_-]{43}\}$/);
    expect(slotTag(key)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('gives different values and different scopes different mark keys', () => {
    const all = awkwardValues.flatMap((value) => [keys.mark('subject', value), keys.mark('client', value), keys.mark('session', value)]);
    expect(new Set(all).size).toBe(all.length);
  });

  it('puts every key under the prefix, so deployments sharing a Redis stay apart', () => {
    const other = createKeyNames('other:');
    for (const names of [keys, other]) {
      const prefix = names === keys ? 'tally:' : 'other:';
      for (const key of [names.token('t'), names.mark('session', 's'), names.revocationSequence, names.keyRing, names.secretFingerprint]) {
        expect(key.startsWith(prefix)).toBe(true);
      }
    }
    expect(keys.token('t')).not.toBe(other.token('t'));
  });
});
