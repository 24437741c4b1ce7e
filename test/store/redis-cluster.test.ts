// The Redis store on a real three-primary Redis Cluster: the shared
// conformance suite, and proof that the store's keys really are spread over
// hash slots (a store that tagged every key alike would pass the suite on a
// cluster while keeping all its data, and load, on one node).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/core/ports.js';
import { createRedisStore } from '../../src/store/redis/redis-store.js';
import { storedKey, tokenRecord } from '../support/store-records.js';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster.js';
import { withNodeClient } from '../support/redis-node-client.js';
import { describeStoreConformance } from './conformance.js';
import { redisStoreHarness } from './redis-harness.js';

const HOUR_MS = 60 * 60 * 1000;

let cluster: RedisClusterHandle;

beforeAll(async () => {
  cluster = await startRedisCluster({ primaries: 3 });
});

afterAll(async () => {
  await cluster?.stop();
});

// Holders follow a replica's view, which redis-topologies-replicas.test.ts runs on a Cluster.
describeStoreConformance('redis cluster', () => redisStoreHarness(cluster.url), { withoutHolders: 'the cache is off here' });

interface PlacedKey {
  slot: number;
  /** The port of the primary that holds the key. */
  port: number;
  /** DUMP of the value, to tell which keys an operation changed. */
  value: string;
}

/** Every key under prefix on every primary, with its slot as the cluster computes it. */
async function placedKeys(prefix: string): Promise<Map<string, PlacedKey>> {
  const placed = new Map<string, PlacedKey>();
  for (const node of cluster.nodes) {
    await withNodeClient(node.port, async (client) => {
      const [role] = (await client.call('ROLE')) as [string];
      if (role !== 'master') return;
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
          const value = (await client.dumpBuffer(key))?.toString('base64') ?? '';
          placed.set(key, { slot, port: node.port, value });
        }
      } while (cursor !== '0');
    });
  }
  return placed;
}

/**
 * The keys an operation wrote: new ones and those whose value changed. Found
 * by looking, not by importing the store's key names, so the test checks
 * where data really went.
 */
async function keysWrittenBy(prefix: string, operation: () => Promise<unknown>): Promise<Map<string, PlacedKey>> {
  const before = await placedKeys(prefix);
  await operation();
  const written = await placedKeys(prefix);
  for (const [key, placed] of before) {
    if (written.get(key)?.value === placed.value) written.delete(key);
  }
  return written;
}

function slotsOf(keys: Map<string, PlacedKey>): number[] {
  return [...new Set([...keys.values()].map((placed) => placed.slot))];
}

describe('redis cluster key layout', () => {
  const stores: Store[] = [];

  afterAll(async () => {
    for (const store of stores) await store.close();
  });

  function openStore(keyPrefix: string): Store {
    const store = createRedisStore({ url: cluster.url, keyPrefix });
    stores.push(store);
    return store;
  }

  const ringKey = storedKey('layout-key');

  // Fixed prefixes on a cluster made for this file: the slots then do not
  // depend on chance, so each test answers the same on every run.

  it("keeps a token off the slots of a subject's revocation mark and of the key ring, and reads each back", async () => {
    const keyPrefix = 'tally-test:layout:';
    const store = openStore(keyPrefix);
    const token = tokenRecord({ tokenId: 'layout-token' });
    expect((await placedKeys(keyPrefix)).size).toBe(0);
    // A first revocation creates what every revocation shares, so that the
    // second shows what one subject's mark writes.
    await store.revokeScope('subject', 'someone-else', HOUR_MS);
    const tokenKeys = await keysWrittenBy(keyPrefix, () => store.putToken(token));
    let taken = 0;
    const markKeys = await keysWrittenBy(keyPrefix, async () => {
      taken = await store.revokeScope('subject', 'alice', HOUR_MS);
    });
    const ringKeys = await keysWrittenBy(keyPrefix, () => store.writeKeyRing(0, [ringKey]));

    for (const [what, keys] of [['token', tokenKeys], ['mark', markKeys], ['key ring', ringKeys]] as const) {
      expect(keys.size, `keys written for the ${what}`).toBeGreaterThan(0);
      for (const [key, placed] of keys) {
        const count = await withNodeClient(placed.port, (client) =>
          client.call('CLUSTER', 'COUNTKEYSINSLOT', String(placed.slot)),
        );
        expect(Number(count), `keys in slot ${placed.slot}, which holds ${what} key ${key}`).toBeGreaterThan(0);
      }
    }
    // The mark and the key ring are not asked to differ: the store keeps all
    // of revocation and the ring on one slot on purpose, so that one script
    // takes the number, raises the mark and announces the event.
    const revocationSlots = new Set([...slotsOf(markKeys), ...slotsOf(ringKeys)]);
    expect(slotsOf(tokenKeys).filter((slot) => revocationSlots.has(slot))).toEqual([]);

    // Read through a second store too: a fresh client must find every slot's owner itself.
    const { storeIdentity } = await store.readKeyRing();
    expect(storeIdentity).toBeDefined();
    for (const reader of [store, openStore(keyPrefix)]) {
      expect(await reader.getToken(token.tokenId)).toEqual(token);
      expect(await reader.revocationMark([['subject', 'alice'], ['client', 'orders']])).toBe(taken);
      expect(await reader.revocationSequence()).toBeGreaterThanOrEqual(taken);
      expect(await reader.readKeyRing()).toEqual({ version: 1, keys: [ringKey], storeIdentity });
    }
  });

  it('spreads token records over every primary, and finds each again', async () => {
    const keyPrefix = 'tally-test:spread:';
    const store = openStore(keyPrefix);
    const tokens = Array.from({ length: 24 }, (_, index) => tokenRecord({ tokenId: `spread-token-${index}` }));
    const written = await keysWrittenBy(keyPrefix, () => Promise.all(tokens.map((token) => store.putToken(token))));

    const primaries = new Set([...written.values()].map((placed) => placed.port));
    expect(primaries.size).toBe(cluster.nodes.length);
    expect(slotsOf(written).length).toBeGreaterThan(cluster.nodes.length);
    const reader = openStore(keyPrefix);
    for (const token of tokens) expect(await reader.getToken(token.tokenId)).toEqual(token);
  });
});
