// RevokeKey: a key that may be compromised is pulled at once. Every JWT it
// signed is inactive on every replica when the call returns (through the
// revocation mark, its event and the replicas' leases, as Revoke does), the
// key leaves the ring, and an active key is replaced.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { deriveSecrets } from '../../src/core/secrets.js';
import { createTokenService, type TokenService } from '../../src/core/token-service.js';
import { createRedisStore, type RedisStore } from '../../src/store/redis/redis-store.js';
import { eventually } from '../support/eventually.js';
import { testRedisUrl } from '../support/redis-server.js';
import { startReplica, type Replica } from './fixtures.js';

const HOUR = 3_600_000;
const replicas: Replica[] = [];
afterEach(async () => {
  for (const { service, store } of replicas.splice(0)) {
    await service.stop();
    await store.close();
  }
});

describe('RevokeKey', () => {
  it('makes every JWT of a retiring key inactive and takes the key out of the ring', async () => {
    const replica = await startReplica();
    replicas.push(replica);
    const { service } = replica;
    const old = await service.issue({ subject: 'alice', format: 'jwt' });
    const opaque = await service.issue({ subject: 'alice' });
    const oldKid = decodeProtectedHeader(old.token).kid!;
    await service.rotateKeys();
    const fresh = await service.issue({ subject: 'alice', format: 'jwt' });
    expect((await service.introspect({ token: old.token })).active).toBe(true);

    const ring = await service.revokeKey(oldKid);
    expect(ring.map((key) => key.kid)).not.toContain(oldKid);
    expect((await service.listKeys()).map((key) => key.kid)).not.toContain(oldKid);
    expect(await service.introspect({ token: old.token })).toMatchObject({ active: false });
    expect((await service.introspect({ token: fresh.token })).active).toBe(true);
    expect((await service.introspect({ token: opaque.token })).active).toBe(true);
  });

  it('replaces a revoked active key with a new one of its algorithm', async () => {
    const replica = await startReplica({ keyAlgorithm: 'ES256' });
    replicas.push(replica);
    const { service } = replica;
    const before = await service.issue({ subject: 'alice', format: 'jwt' });
    const kid = decodeProtectedHeader(before.token).kid!;
    const ring = await service.revokeKey(kid);
    expect(ring).toHaveLength(1);
    expect(ring[0]).toMatchObject({ state: 'active', algorithm: 'ES256' });
    expect(ring[0]!.kid).not.toBe(kid);
    expect(await service.introspect({ token: before.token })).toMatchObject({ active: false });
    const after = await service.issue({ subject: 'alice', format: 'jwt' });
    expect(decodeProtectedHeader(after.token).kid).toBe(ring[0]!.kid);
    expect((await service.introspect({ token: after.token })).active).toBe(true);
  });

  it('changes nothing for a kid not in the ring, and refuses a malformed kid naming the field', async () => {
    const replica = await startReplica();
    replicas.push(replica);
    const { service } = replica;
    const before = await service.listKeys();
    expect(await service.revokeKey('no-such-key')).toEqual(before);
    await expect(service.revokeKey('a b')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'kid' });
    await expect(service.revokeKey('')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'kid' });
  });
});

describe('RevokeKey on replicas sharing a real Redis', () => {
  const stores: RedisStore[] = [];
  const services: TokenService[] = [];
  afterAll(async () => {
    await Promise.all(services.map((service) => service.stop()));
    await Promise.all(stores.map((store) => store.close()));
  });

  it('is exact on every replica once it returns, though their rings reload later', async () => {
    const url = await testRedisUrl();
    const keyPrefix = `revoke-key-${randomUUID()}:`;
    const secrets = deriveSecrets(new Uint8Array(randomBytes(32)));
    const all: Array<{ service: TokenService; store: RedisStore }> = [];
    for (let i = 0; i < 3; i++) {
      // The cache and local view on, and a ring refresh far away; the second and third replicas are
      // not told of ring changes either: only the revocation event can make them exact.
      const store = createRedisStore({ url, keyPrefix, cacheSize: 1000, leaseMs: 2000 });
      const service = createTokenService({
        store: i === 0 ? store : { ...store, onKeyRingChange: undefined }, secrets, issuer: 'https://tally.test', defaultTtlMs: HOUR, maxTtlMs: 24 * HOUR, clockSkewMs: 60_000,
        keyAlgorithm: 'EdDSA', keyRefreshMs: 3_600_000,
      });
      stores.push(store);
      services.push(service);
      await service.start();
      all.push({ service, store });
    }
    await eventually(async () => {
      if (!all.every(({ store }) => store.localViewFresh())) throw new Error('views not fresh yet');
    }, 10_000);
    const tokens = await Promise.all(all.map(({ service }, i) => service.issue({ subject: `user-${i}`, format: 'jwt' })));
    const kid = decodeProtectedHeader(tokens[0]!.token).kid!;
    // Every replica has the records cached and answers from its view.
    for (const { service } of all) for (const { token } of tokens) expect((await service.introspect({ token })).active).toBe(true);

    await all[0]!.service.revokeKey(kid);
    for (const { service } of all) {
      for (const { token } of tokens) expect(await service.introspect({ token })).toMatchObject({ active: false });
    }
    // The replicas that still hold the key in their rings refuse its JWTs by the mark.
    for (const { service } of all.slice(1)) {
      expect(await service.introspect({ token: tokens[1]!.token })).toMatchObject({ active: false, reason: 'revoked' });
    }
    // The replacement key signs tokens every replica accepts (an unknown kid makes a replica reload its ring).
    const issued = await all[0]!.service.issue({ subject: 'later', format: 'jwt' });
    expect(decodeProtectedHeader(issued.token).kid).not.toBe(kid);
    for (const { service } of all) expect((await service.introspect({ token: issued.token })).active).toBe(true);
  });
});
