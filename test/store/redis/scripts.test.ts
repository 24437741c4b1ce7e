// The scripts' guarantees where ordinary use of the store cannot force the
// interleaving or timing that needs them.

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyNames, type KeyNames } from '../../../src/store/redis/keys.js';
import { SCRIPTS, type ScriptCommands } from '../../../src/store/redis/scripts.js';
import { eventually } from '../../support/eventually.js';
import { testRedisUrl } from '../../support/redis-server.js';

describe('Redis Lua scripts', () => {
  let client: Redis & ScriptCommands;
  let keys: KeyNames;
  const revoke = (field: string, keepForMs: number) =>
    client.revoke(keys.revocationSequence, keys.marks, keys.markExpiry, keys.events, keys.identity, field, keepForMs, 1000, randomUUID());
  const writeKeyRing = (expectedVersion: number, keysJson: string) =>
    client.writeKeyRing(keys.keyRing, keys.revocationSequence, keys.events, keys.identity, expectedVersion, keysJson, 1000, randomUUID());
  const snapshot = () => client.snapshot(keys.revocationSequence, keys.marks, keys.markExpiry, keys.events, keys.identity, randomUUID());
  /** Renews as a view loaded from the store as it is now, caught up to its last event. */
  const renewLease = async (replicaId: string, applied: number, leaseMs: number) => {
    const [, lastEventId, , identity] = await snapshot();
    return renewLeaseAs(replicaId, applied, leaseMs, identity, lastEventId);
  };
  const renewLeaseAs = (replicaId: string, applied: number, leaseMs: number, identity: string, lastEventId: string) =>
    client.renewLease(keys.leases, keys.identity, keys.revocationSequence, keys.events, replicaId, applied, leaseMs, identity, lastEventId, randomUUID());
  const pendingReplicas = (sequence: number, fenceMs = 0) => client.pendingReplicas(keys.leases, keys.identity, sequence, fenceMs);
  const events = async () =>
    (await client.xrange(keys.events, '-', '+')).map(([id, fields]) => ({
      id,
      ...Object.fromEntries(fields.reduce<string[][]>((pairs, value, i) => (i % 2 ? pairs : [...pairs, [value, fields[i + 1]!]]), [])),
    }) as Record<string, string>);

  beforeAll(async () => {
    client = new Redis(await testRedisUrl(), { scripts: SCRIPTS }) as Redis & ScriptCommands;
  });
  afterAll(async () => {
    await client.quit();
  });
  // A fresh prefix per test: the scripts see only their own keys. Unless a
  // test is about setting the store up, it was set up long ago (no fence, no floor).
  const fresh = async (setUpLongAgo = true) => {
    keys = createKeyNames(`tally-test:${randomUUID()}:`);
    if (setUpLongAgo) await client.hset(keys.identity, 'id', randomUUID(), 'since', 0, 'floor', 0);
  };

  it('numbers every revocation and key-ring change in increasing order, each event naming the one before it', async () => {
    await fresh();
    const before = Date.now();
    const first = await revoke('subject:a', 60_000);
    expect(await writeKeyRing(0, '[]')).toBe(1);
    const third = await revoke('token:t', 60_000);
    const written = await events();
    expect(written.map((event) => [event.kind, event.field])).toEqual([['mark', 'subject:a'], ['keys', ''], ['mark', 'token:t']]);
    const numbers = written.map((event) => Number(event.sequence));
    expect(numbers[0]).toBe(first);
    expect(numbers[2]).toBe(third);
    expect(written.map((event) => Number(event.previous))).toEqual([0, numbers[0], numbers[1]]);
    expect(numbers[1]).toBeGreaterThan(numbers[0]!);
    expect(numbers[2]).toBeGreaterThan(numbers[1]!);
    // Never below Redis's time × 1000, so a store that lost its latest numbers cannot hand them out again.
    expect(first).toBeGreaterThanOrEqual((before - 1000) * 1000);
    expect(Number.isSafeInteger(third)).toBe(true);
    expect(await client.get(keys.revocationSequence)).toBe(String(third));
  });

  it('numbers past a sequence that went backwards: every later number is above every one taken before the loss', async () => {
    await fresh();
    const taken = [await revoke('subject:a', 60_000), await revoke('subject:b', 60_000), await revoke('subject:c', 60_000)];
    // The store comes back as it was after the first one (a replica that was behind), a
    // millisecond or more later by Redis's clock, as any failover or restore is.
    await client.set(keys.revocationSequence, taken[0]!);
    await eventually(async () => {
      const [seconds, micros] = await client.time();
      expect(Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)).toBeGreaterThan(Math.floor(taken[2]! / 1000));
    }, 1_000, 1);
    expect(await revoke('subject:d', 60_000)).toBeGreaterThan(taken[2]!);
  });

  it('keeps the longer of the remaining and the requested keep time', async () => {
    await fresh();
    await revoke('subject:a', 60_000);
    await revoke('subject:a', 10);
    expect(Number(await client.zscore(keys.markExpiry, 'subject:a')) - Date.now()).toBeGreaterThan(50_000);
    expect(await client.readMarks(keys.marks, keys.markExpiry, keys.identity, 'subject:a')).toBe(Number(await client.get(keys.revocationSequence)));
  });

  it('stops counting a mark after its keep time and drops it on a later revocation', async () => {
    await fresh();
    await revoke('session:s', 50);
    await sleep(80);
    expect(await client.readMarks(keys.marks, keys.markExpiry, keys.identity, 'session:s')).toBe(0);
    await revoke('subject:other', 60_000);
    expect(await client.hexists(keys.marks, 'session:s')).toBe(0);
  });

  it('writes the key ring only at the expected version', async () => {
    await fresh();
    expect(await writeKeyRing(1, '["x"]')).toBe(0);
    expect(await writeKeyRing(0, '["a"]')).toBe(1);
    expect(await writeKeyRing(0, '["b"]')).toBe(0);
    expect(await client.hgetall(keys.keyRing)).toEqual({ version: '1', keys: '["a"]' });
  });

  it('says whether a lease was held without a break', async () => {
    await fresh();
    expect(await renewLease('replica-1', 0, 100)).toBe(0);
    expect(await renewLease('replica-1', 0, 100)).toBe(1);
    await sleep(130);
    expect(await renewLease('replica-1', 0, 100)).toBe(0);
  });

  it('counts leased replicas that have not applied an event, and forgets lapsed leases', async () => {
    await fresh();
    await client.set(keys.revocationSequence, 5);
    await renewLease('caught-up', 5, 60_000);
    await renewLease('behind', 4, 60_000);
    await renewLease('gone', 1, 30);
    expect(await pendingReplicas(5)).toBe(2);
    await sleep(60);
    expect(await pendingReplicas(5)).toBe(1);
    expect(await client.hkeys(keys.leases)).not.toContain('gone');
    await renewLease('behind', 5, 60_000);
    expect(await pendingReplicas(5)).toBe(0);
  });

  it('snapshots the sequence, the last event and the live marks together', async () => {
    await fresh();
    const first = await revoke('subject:a', 60_000);
    const second = await revoke('client:c', 60_000);
    const [sequence, lastEventId, marks] = await snapshot();
    expect(sequence).toBe(second);
    expect(lastEventId).toBe((await client.xrevrange(keys.events, '+', '-', 'COUNT', 1))[0]![0]);
    expect(marks.filter((_, i) => i % 3 !== 2)).toEqual(['subject:a', String(first), 'client:c', String(second)]);
  });

  describe('a store that changed under a view', () => {
    /** A store with two events; the view that read them both. */
    async function storeAndView() {
      await fresh();
      await revoke('subject:a', 60_000);
      const applied = await revoke('subject:b', 60_000);
      const [, lastEventId, , identity] = await snapshot();
      expect(await renewLeaseAs('view', applied, 60_000, identity, lastEventId)).toBe(0);
      expect(await renewLeaseAs('view', applied, 60_000, identity, lastEventId)).toBe(1);
      return { applied, lastEventId, identity };
    }
    const leaseOf = (replicaId: string) => client.hget(keys.leases, replicaId);

    it('refuses the lease (-1) once the store lost everything and was set up again under a new identity', async () => {
      const view = await storeAndView();
      const prefixKeys = await client.keys(`${keys.identity.slice(0, keys.identity.indexOf('{'))}*`);
      await client.del(...prefixKeys);
      expect(await renewLeaseAs('view', view.applied, 60_000, view.identity, view.lastEventId)).toBe(-1);
      expect(await leaseOf('view')).toBeNull();
      const [, , , identity] = await snapshot();
      expect(identity).not.toBe(view.identity);
    });

    it('refuses the lease (-2) when the sequence is below what the view applied', async () => {
      const view = await storeAndView();
      const before = await leaseOf('view');
      await client.set(keys.revocationSequence, view.applied - 1);
      expect(await renewLeaseAs('view', view.applied, 60_000, view.identity, view.lastEventId)).toBe(-2);
      expect(await leaseOf('view')).toBe(before);
    });

    it('refuses the lease (-2) when the last event the view read is gone but an older one is still there, even after new events', async () => {
      const view = await storeAndView();
      // A failover to a replica that had only the first event, then a revocation on it.
      await client.xdel(keys.events, view.lastEventId);
      await client.set(keys.revocationSequence, Number((await events())[0]!.sequence));
      await revoke('subject:c', 60_000);
      expect(await renewLeaseAs('view', view.applied, 60_000, view.identity, view.lastEventId)).toBe(-2);
    });

    it('grants the lease when the view\'s place was trimmed away from the front: the stream read finds the gap', async () => {
      const view = await storeAndView();
      await revoke('subject:c', 60_000);
      await client.xtrim(keys.events, 'MAXLEN', 1);
      expect(await renewLeaseAs('view', view.applied, 60_000, view.identity, view.lastEventId)).toBe(1);
    });

    it('counts one more pending replica for fence ms after the store was set up, and none after', async () => {
      await fresh(false);
      const sequence = await revoke('subject:a', 60_000);
      expect(await pendingReplicas(sequence, 60_000)).toBe(1);
      expect(await pendingReplicas(sequence, 100)).toBeLessThanOrEqual(1);
      await sleep(120);
      expect(await pendingReplicas(sequence, 100)).toBe(0);
      // With no identity at all (never set up, or lost), the fence holds.
      await client.del(keys.identity);
      expect(await pendingReplicas(sequence, 100)).toBe(1);
    });
  });

  describe('setting a store up', () => {
    it('on a missing sequence starts it at a floor that counts as a mark on every scope, so tokens numbered before it are revoked', async () => {
      await fresh(false);
      const before = Date.now();
      const sequence = await revoke('subject:a', 60_000);
      const floor = Number(await client.hget(keys.identity, 'floor'));
      expect(floor).toBeGreaterThanOrEqual((before - 1000) * 1000);
      expect(sequence).toBeGreaterThan(floor);
      expect(await client.readMarks(keys.marks, keys.markExpiry, keys.identity, 'subject:never-revoked')).toBe(floor);
      const [, , , , snapshotFloor] = await snapshot();
      expect(Number(snapshotFloor)).toBe(floor);
    });

    it('on an existing sequence (a store from before identities) sets no floor', async () => {
      await fresh(false);
      await client.set(keys.revocationSequence, 41);
      await revoke('subject:a', 60_000);
      expect(await client.hget(keys.identity, 'floor')).toBe('0');
      expect(await client.readMarks(keys.marks, keys.markExpiry, keys.identity, 'subject:never-revoked')).toBe(0);
    });
  });
});
