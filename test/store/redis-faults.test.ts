// What the Redis store does when Redis goes away, stalls or restarts. Each test
// owns a private redis-server, since it stops, kills or pauses it.

import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.js';
import type { Store } from '../../src/core/ports.js';
import { createRedisStore } from '../../src/store/redis/redis-store.js';
import { eventually, timed } from '../support/eventually.js';
import { storedKey, tokenRecord } from '../support/store-records.js';
import { startRedis, type RedisServerHandle } from '../support/redis-server.js';

const COMMAND_TIMEOUT_MS = 500;
const HOUR_MS = 60 * 60 * 1000;

const servers: RedisServerHandle[] = [];
const stores: Store[] = [];

async function startServer(appendonly = true): Promise<RedisServerHandle> {
  const server = await startRedis({ appendonly });
  servers.push(server);
  return server;
}

function openStore(server: RedisServerHandle): Store {
  const store = createRedisStore({ url: server.url, commandTimeoutMs: COMMAND_TIMEOUT_MS });
  stores.push(store);
  return store;
}

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const server of servers.splice(0)) await server.kill();
});

/** The one record these tests write, and then look up by its id: a JWT's, with no session. */
const durableRecord = () => tokenRecord({ tokenId: 'durable-token', format: 'jwt', sessionId: '', sequence: 0 });

const ringKey = storedKey('k1', {
  algorithm: 'ES256',
  publicJwk: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' },
  sealedPrivateKey: 'sealed',
});

/** One invocation of every Store method, named for the failure message. */
function everyCall(store: Store): Array<[string, () => Promise<unknown>]> {
  return [
    ['ping', () => store.ping()],
    ['revocationSequence', () => store.revocationSequence()],
    ['putToken', () => store.putToken(durableRecord())],
    ['getToken', () => store.getToken('durable-token')],
    ['revokeScope', () => store.revokeScope('subject', 'alice', HOUR_MS)],
    ['revocationMark', () => store.revocationMark([['subject', 'alice']])],
    ['readKeyRing', () => store.readKeyRing()],
    ['writeKeyRing', () => store.writeKeyRing(0, [ringKey])],
    ['checkSecretFingerprint', () => store.checkSecretFingerprint('fingerprint')],
  ];
}

async function expectEveryCallUnavailable(store: Store, withinMs: number): Promise<void> {
  const outcomes = await Promise.all(
    everyCall(store).map(async ([method, invoke]) => ({ method, ...(await timed(invoke)) })),
  );
  for (const { method, elapsedMs, result } of outcomes) {
    expect(result.status, method).toBe('rejected');
    if (result.status === 'rejected') {
      expect(result.reason, method).toBeInstanceOf(StoreUnavailableError);
      expect((result.reason as StoreUnavailableError).code, method).toBe('ERR_STORE_UNAVAILABLE');
      // The driver's words stay in the cause, out of what a client could be shown.
      expect((result.reason as Error).message, method).toBe('the token store is unavailable');
    }
    expect(elapsedMs, method).toBeLessThan(withinMs);
  }
}

interface Written {
  revoked: number;
  sequence: number;
  storeIdentity: string | undefined;
}

async function writeEverything(store: Store): Promise<Written> {
  await store.putToken(durableRecord());
  await store.revokeScope('client', 'orders', HOUR_MS);
  const revoked = await store.revokeScope('subject', 'alice', HOUR_MS);
  expect(await store.writeKeyRing(0, [ringKey])).toBe(true);
  expect(await store.checkSecretFingerprint('fingerprint-a')).toBe(true);
  // Key-ring changes take a number too (they are events replicas apply).
  const sequence = await store.revocationSequence();
  expect(sequence).toBeGreaterThanOrEqual(revoked);
  const { storeIdentity } = await store.readKeyRing();
  expect(storeIdentity).toBeDefined();
  return { revoked, sequence, storeIdentity };
}

async function expectEverythingKept(store: Store, { revoked, sequence, storeIdentity }: Written): Promise<void> {
  expect(await store.getToken('durable-token')).toMatchObject({ tokenId: 'durable-token', subject: 'alice' });
  expect(await store.revocationMark([['subject', 'alice']])).toBe(revoked);
  expect(await store.revocationSequence()).toBe(sequence);
  // The same store, not one set up again: replicas keep their views.
  expect(await store.readKeyRing()).toEqual({ version: 1, keys: [ringKey], storeIdentity });
  expect(await store.checkSecretFingerprint('fingerprint-b')).toBe(false);
}

describe('redis store under faults', () => {
  it('rejects every call with StoreUnavailableError within 2 s once Redis has stopped, never hanging', async () => {
    const server = await startServer();
    const store = openStore(server);
    await store.ping();
    await server.stop();
    await expectEveryCallUnavailable(store, 2000);
  });

  it('recovers by itself after Redis restarts, with tokens, marks, sequence, key ring and fingerprint kept', async () => {
    const server = await startServer();
    const store = openStore(server);
    const written = await writeEverything(store);
    await server.stop();
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    await server.restart();
    await eventually(() => store.ping(), 5000);
    await expectEverythingKept(store, written);
    // Numbering continues after the restart instead of starting over.
    expect(await store.revokeScope('session', 's', HOUR_MS)).toBeGreaterThan(written.sequence);
  });

  it('keeps every acknowledged revocation through a SIGKILL crash and restart (appendonly yes, appendfsync always)', async () => {
    const server = await startServer();
    const store = openStore(server);
    const written = await writeEverything(store);
    await server.kill();
    await server.restart();
    await eventually(() => store.ping(), 5000);
    await expectEverythingKept(store, written);
  });

  it('loses revocations on restart without appendonly, which is why the README requires it', async () => {
    const server = await startServer(false);
    const store = openStore(server);
    await store.revokeScope('subject', 'alice', HOUR_MS);
    await server.restart();
    await eventually(() => store.ping(), 5000);
    expect(await store.revocationMark([['subject', 'alice']])).toBe(0);
    expect(await store.revocationSequence()).toBe(0);
  });

  it('rejects calls within the command timeout while Redis is paused, and works again once resumed', async () => {
    const server = await startServer();
    const store = openStore(server);
    await store.revokeScope('subject', 'alice', HOUR_MS);
    server.pause();
    try {
      await expectEveryCallUnavailable(store, COMMAND_TIMEOUT_MS + 500);
    } finally {
      server.resume();
    }
    await eventually(() => store.ping(), 5000);
    // The acknowledged revocation holds; those refused during the pause may
    // have run once Redis resumed (unacknowledged calls may go either way).
    expect(await store.revocationMark([['subject', 'alice']])).toBeGreaterThanOrEqual(1);
    const next = await store.revokeScope('subject', 'alice', HOUR_MS);
    expect(await store.revocationMark([['subject', 'alice']])).toBe(next);
  });

  it('answers every call within the command timeout plus 150 ms while Redis hangs, even a call made behind one already stuck', async () => {
    const server = await startServer();
    const store = openStore(server);
    await store.ping();
    server.pause();
    try {
      // Each call goes out while the one before it is already waiting on the
      // paused server: with auto-pipelining, a command queued behind a stuck
      // batch used to wait out that batch's timeout, then its own.
      const outcomes: Array<{ method: string; elapsedMs: number; result: PromiseSettledResult<unknown> }> = [];
      const pending: Array<Promise<void>> = [];
      for (const [method, invoke] of everyCall(store)) {
        pending.push(timed(invoke).then((outcome) => void outcomes.push({ method, ...outcome })));
        // The next turn of the event loop: the call before has been written to the socket.
        await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(pending);
      for (const { method, elapsedMs, result } of outcomes) {
        expect(result.status, method).toBe('rejected');
        expect(elapsedMs, method).toBeLessThan(COMMAND_TIMEOUT_MS + 150);
      }
      const worst = Math.max(...outcomes.map((outcome) => outcome.elapsedMs));
      process.stdout.write(`worst call while Redis hangs: ${worst.toFixed(0)} ms with a ${COMMAND_TIMEOUT_MS} ms command timeout\n`);
    } finally {
      server.resume();
    }
  });

  it('fails fast when created while Redis is down, then connects by itself when Redis starts', async () => {
    const server = await startServer();
    await server.stop();
    const store = openStore(server);
    await expectEveryCallUnavailable(store, 2000);
    await server.restart();
    await eventually(() => store.ping(), 5000);
    await store.putToken(durableRecord());
    expect(await store.getToken('durable-token')).toBeDefined();
  });

  it('answers at once when used right after creation, while the first connection is still being made', async () => {
    const server = await startServer();
    const store = openStore(server);
    await expect(store.ping()).resolves.toBeUndefined();
  });
});
