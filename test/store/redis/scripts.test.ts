// The scripts' guarantees where ordinary use of the store cannot force the
// interleaving or timing that needs them.

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyNames, type KeyNames } from '../../../src/store/redis/keys.js';
import { SCRIPTS, type ScriptCommands } from '../../../src/store/redis/scripts.js';
import { testRedisUrl } from '../../support/redis-server.js';

describe('Redis Lua scripts', () => {
  let client: Redis & ScriptCommands;
  let keys: KeyNames;
  const revoke = (field: string, keepForMs: number) =>
    client.revoke(keys.revocationSequence, keys.marks, keys.markExpiry, keys.events, field, keepForMs, 1000);

  beforeAll(async () => {
    client = new Redis(await testRedisUrl(), { scripts: SCRIPTS }) as Redis & ScriptCommands;
  });
  afterAll(async () => {
    await client.quit();
  });
  // A fresh prefix per test: the scripts see only their own keys.
  const fresh = () => {
    keys = createKeyNames(`tally-test:${randomUUID()}:`);
  };

  it('numbers every revocation and key-ring change consecutively in the event stream', async () => {
    fresh();
    await revoke('subject:a', 60_000);
    expect(await client.writeKeyRing(keys.keyRing, keys.revocationSequence, keys.events, 0, '[]', 1000)).toBe(1);
    await revoke('token:t', 60_000);
    const entries = await client.xrange(keys.events, '-', '+');
    const events = entries.map(([, fields]) => Object.fromEntries(fields.reduce<string[][]>((pairs, value, i) => (i % 2 ? pairs : [...pairs, [value, fields[i + 1]!]]), [])));
    expect(events.map((event) => [event.sequence, event.kind, event.field])).toEqual([
      ['1', 'mark', 'subject:a'],
      ['2', 'keys', ''],
      ['3', 'mark', 'token:t'],
    ]);
  });

  it('keeps the longer of the remaining and the requested keep time', async () => {
    fresh();
    await revoke('subject:a', 60_000);
    await revoke('subject:a', 10);
    expect(Number(await client.zscore(keys.markExpiry, 'subject:a')) - Date.now()).toBeGreaterThan(50_000);
    expect(await client.readMarks(keys.marks, keys.markExpiry, 'subject:a')).toBe(2);
  });

  it('stops counting a mark after its keep time and drops it on a later revocation', async () => {
    fresh();
    await revoke('session:s', 50);
    await sleep(80);
    expect(await client.readMarks(keys.marks, keys.markExpiry, 'session:s')).toBe(0);
    await revoke('subject:other', 60_000);
    expect(await client.hexists(keys.marks, 'session:s')).toBe(0);
  });

  it('writes the key ring only at the expected version', async () => {
    fresh();
    expect(await client.writeKeyRing(keys.keyRing, keys.revocationSequence, keys.events, 1, '["x"]', 1000)).toBe(0);
    expect(await client.writeKeyRing(keys.keyRing, keys.revocationSequence, keys.events, 0, '["a"]', 1000)).toBe(1);
    expect(await client.writeKeyRing(keys.keyRing, keys.revocationSequence, keys.events, 0, '["b"]', 1000)).toBe(0);
    expect(await client.hgetall(keys.keyRing)).toEqual({ version: '1', keys: '["a"]' });
  });

  it('says whether a lease was held without a break', async () => {
    fresh();
    expect(await client.renewLease(keys.leases, 'replica-1', 0, 100)).toBe(0);
    expect(await client.renewLease(keys.leases, 'replica-1', 0, 100)).toBe(1);
    await sleep(130);
    expect(await client.renewLease(keys.leases, 'replica-1', 0, 100)).toBe(0);
  });

  it('counts leased replicas that have not applied an event, and forgets lapsed leases', async () => {
    fresh();
    await client.renewLease(keys.leases, 'caught-up', 5, 60_000);
    await client.renewLease(keys.leases, 'behind', 4, 60_000);
    await client.renewLease(keys.leases, 'gone', 1, 30);
    expect(await client.pendingReplicas(keys.leases, 5)).toBe(2);
    await sleep(60);
    expect(await client.pendingReplicas(keys.leases, 5)).toBe(1);
    expect(await client.hkeys(keys.leases)).not.toContain('gone');
    await client.renewLease(keys.leases, 'behind', 5, 60_000);
    expect(await client.pendingReplicas(keys.leases, 5)).toBe(0);
  });

  it('snapshots the sequence, the last event and the live marks together', async () => {
    fresh();
    await revoke('subject:a', 60_000);
    await revoke('client:c', 60_000);
    const [sequence, lastEventId, marks] = await client.snapshot(keys.revocationSequence, keys.marks, keys.markExpiry, keys.events);
    expect(sequence).toBe(2);
    expect(lastEventId).toBe((await client.xrevrange(keys.events, '+', '-', 'COUNT', 1))[0]![0]);
    expect(marks.filter((_, i) => i % 3 !== 2)).toEqual(['subject:a', '1', 'client:c', '2']);
  });
});
