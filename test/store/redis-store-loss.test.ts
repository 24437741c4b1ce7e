// When Redis comes back with less than it had: emptied by FLUSHALL, or
// restarted with nothing kept. Replicas that stayed up must notice, drop their
// local views (marks, token cache, stream position, key ring), and from then
// on answer every token exactly as a replica started afresh does; every
// Revoke that returned after the loss holds at once on every replica.
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { deriveSecrets, type DerivedSecrets } from '../../src/core/secrets.js';
import { createTokenService, type TokenService } from '../../src/core/token-service.js';
import type { StoreChange } from '../../src/store/redis/replica-view.js';
import { createRedisStore, type RedisStore } from '../../src/store/redis/redis-store.js';
import { eventually } from '../support/eventually.js';
import { startRedis, type RedisServerHandle } from '../support/redis-server.js';

const LEASE_MS = 400;

interface Replica {
  store: RedisStore;
  service: TokenService;
  changes: StoreChange[];
}

const opened: Replica[] = [];
const servers: RedisServerHandle[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map(async ({ store, service }) => {
    await service.stop();
    await store.close();
  }));
  await Promise.all(servers.splice(0).map((server) => server.kill()));
});

async function startReplica(url: string, keyPrefix: string, secrets: DerivedSecrets): Promise<Replica> {
  const changes: StoreChange[] = [];
  const store = createRedisStore({
    url, keyPrefix, cacheSize: 1000, leaseMs: LEASE_MS, commandTimeoutMs: 1000, onStoreChange: (change) => changes.push(change),
  });
  const service = createTokenService({
    store, secrets, issuer: 'https://tally.test', defaultTtlMs: 3_600_000, maxTtlMs: 7_200_000, clockSkewMs: 1_000,
    keyAlgorithm: 'EdDSA', keyRefreshMs: 60_000,
  });
  await eventually(() => service.start(), 5_000);
  const replica = { store, service, changes };
  opened.push(replica);
  await eventually(async () => expect(store.localViewFresh()).toBe(true), 5_000);
  return replica;
}

const losses: Array<[string, (server: RedisServerHandle) => Promise<void>]> = [
  ['emptied by FLUSHALL', async (server) => {
    const client = new Redis(server.url);
    await client.flushall();
    client.disconnect();
  }],
  ['restarted after a crash with nothing kept', async (server) => {
    await server.kill();
    await server.restart();
  }],
];

describe.each(losses)('Redis %s under live replicas', (_name, lose) => {
  it('every Revoke that returns after the loss holds at once on every replica, and live replicas answer every token as a fresh one does', async () => {
    const server = await startRedis({ appendonly: false });
    servers.push(server);
    const keyPrefix = `tally-test:${randomUUID()}:`;
    const secrets = deriveSecrets(new Uint8Array(randomBytes(32)));
    const live = [await startReplica(server.url, keyPrefix, secrets), await startReplica(server.url, keyPrefix, secrets)];
    const [first, second] = live as [Replica, Replica];

    // Before the loss: tokens of both formats, one revoked, all in every cache.
    const tokens: string[] = [];
    for (const format of ['opaque', 'jwt'] as const) tokens.push((await first.service.issue({ subject: `before-${format}`, format })).token);
    const revokedBefore = (await first.service.issue({ subject: 'revoked-before' })).token;
    await second.service.revoke({ kind: 'subject', value: 'revoked-before' });
    tokens.push(revokedBefore);
    for (const { service } of live) for (const token of tokens) await service.introspect({ token });
    const kidsBefore = (await first.service.listKeys()).map((key) => key.kid);

    await lose(server);

    // At once, while the replicas may still hold their old views: a token
    // issued after the loss, in each cache, then revoked; no replica may say active.
    let activeAfterRevoke = 0;
    for (let trial = 0; trial < 40; trial++) {
      const issuer = live[trial % 2]!;
      const revoker = live[(trial + 1) % 2]!;
      const subject = `after-${trial}`;
      const { token } = await eventually(() => issuer.service.issue({ subject, format: trial % 4 < 2 ? 'opaque' : 'jwt' }), 5_000);
      tokens.push(token);
      for (const { service } of live) await service.introspect({ token }).catch(() => undefined);
      await eventually(() => revoker.service.revoke({ kind: 'subject', value: subject }), 5_000);
      for (const { service } of live) if ((await service.introspect({ token })).active) activeAfterRevoke++;
    }
    expect(activeAfterRevoke).toBe(0);

    // Each live replica noticed, once, and leases again on the store as it is now.
    for (const replica of live) {
      await eventually(async () => expect(replica.store.localViewFresh()).toBe(true), 5_000);
      expect(replica.changes).toEqual(['set-up-again']);
    }
    const issuedAfter = await first.service.issue({ subject: 'after-recovery', format: 'jwt' });
    tokens.push(issuedAfter.token, (await second.service.issue({ subject: 'after-recovery-opaque' })).token);

    // A replica started now is the reference: every answer matches it.
    const fresh = await startReplica(server.url, keyPrefix, secrets);
    for (const token of tokens) {
      const expected = await fresh.service.introspect({ token });
      for (const { service } of live) expect(await service.introspect({ token })).toEqual(expected);
    }
    // Tokens from before the loss are unknown now; those issued since answer as issued.
    for (const token of tokens.slice(0, 3)) expect((await fresh.service.introspect({ token })).active).toBe(false);
    expect((await fresh.service.introspect({ token: issuedAfter.token })).active).toBe(true);

    // No live replica signs with, or shows, a key the store no longer has.
    const kidsAfter = (await fresh.service.listKeys()).map((key) => key.kid);
    expect(kidsAfter.some((kid) => kidsBefore.includes(kid))).toBe(false);
    for (const { service } of live) expect((await service.listKeys()).map((key) => key.kid)).toEqual(kidsAfter);
  });
});
