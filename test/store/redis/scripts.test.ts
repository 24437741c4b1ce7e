// The scripts' guarantees where ordinary use of the store cannot force the
// interleaving that needs them: a mark raise arriving after a higher one.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCRIPTS, type ScriptCommands } from '../../../src/store/redis/scripts.js';
import { testRedisUrl } from '../../support/redis-server.js';

describe('Redis Lua scripts', () => {
  let client: Redis & ScriptCommands;
  const key = () => `tally-test:${randomUUID()}:{x}`;

  beforeAll(async () => {
    client = new Redis(await testRedisUrl(), { scripts: SCRIPTS }) as Redis & ScriptCommands;
  });

  afterAll(async () => {
    await client.quit();
  });

  it('never lowers a mark when a lower revocation number arrives late', async () => {
    const mark = key();
    expect(await client.raiseMark(mark, 9, 60_000)).toBe('9');
    expect(await client.raiseMark(mark, 4, 60_000)).toBe('9');
    expect(await client.get(mark)).toBe('9');
    expect(await client.raiseMark(mark, 12, 60_000)).toBe('12');
  });

  it('keeps the longer of the remaining and the requested keep time', async () => {
    const mark = key();
    await client.raiseMark(mark, 1, 60_000);
    await client.raiseMark(mark, 2, 10);
    expect(await client.pttl(mark)).toBeGreaterThan(50_000);
    await client.raiseMark(mark, 3, 120_000);
    expect(await client.pttl(mark)).toBeGreaterThan(110_000);
  });

  it('writes the key ring only at the expected version, and raises it by one', async () => {
    const ring = key();
    expect(await client.writeKeyRing(ring, 1, '["x"]')).toBe(0);
    expect(await client.writeKeyRing(ring, 0, '["a"]')).toBe(1);
    expect(await client.writeKeyRing(ring, 0, '["b"]')).toBe(0);
    expect(await client.hgetall(ring)).toEqual({ version: '1', keys: '["a"]' });
  });
});
