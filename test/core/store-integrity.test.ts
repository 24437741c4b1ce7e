// Write access to Redis without the master key makes Tally trust nothing new.
// An attacker here writes straight into a real redis-server: a key planted in
// the ring, an own key's public part swapped, token records changed or made
// up. None of it is trusted, listed or published; each is reported; nothing
// crashes.
import { describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { Redis } from 'ioredis';
import { deriveSecrets } from '../../src/core/secrets.js';
import { createTokenService, type TokenService } from '../../src/core/token-service.js';
import type { StoredKey, TokenRecord } from '../../src/core/types.js';
import { createKeyNames, type KeyNames } from '../../src/store/redis/keys.js';
import { createRedisStore, type RedisStore } from '../../src/store/redis/redis-store.js';
import { cleanedUpAfterAll } from '../support/cleaned-up.js';
import { testRedisUrl } from '../support/redis-server.js';
import { tokenRecord } from '../support/store-records.js';

const ISSUER = 'https://tally.test';
const HOUR = 3_600_000;
const { stores, services, clients } = cleanedUpAfterAll<RedisStore>();

interface Setup {
  service: TokenService;
  redis: Redis;
  keys: KeyNames;
  tampered: Array<[string, string]>;
}

async function setup(): Promise<Setup> {
  const url = await testRedisUrl();
  const keyPrefix = `integrity-${randomUUID()}:`;
  const store = createRedisStore({ url, keyPrefix });
  const tampered: Array<[string, string]> = [];
  const service = createTokenService({
    store,
    secrets: deriveSecrets(new Uint8Array(randomBytes(32))),
    issuer: ISSUER, defaultTtlMs: HOUR, maxTtlMs: 24 * HOUR, clockSkewMs: 60_000,
    keyAlgorithm: 'EdDSA', keyRefreshMs: 60_000,
    onTampered: (kind, id) => tampered.push([kind, id]),
  });
  stores.push(store);
  services.push(service);
  await service.start();
  const redis = new Redis(url);
  clients.push(redis);
  return { service, redis, keys: createKeyNames(keyPrefix), tampered };
}

/** Rewrites the ring as an attacker would, raising its version so every replica reloads it. */
async function rewriteRing({ redis, keys }: Setup, change: (entries: unknown[]) => unknown[]): Promise<void> {
  const [version, json] = await redis.hmget(keys.keyRing, 'version', 'keys');
  await redis.hset(keys.keyRing, 'version', Number(version) + 1, 'keys', JSON.stringify(change(JSON.parse(json!) as unknown[])));
}

async function attackerKey() {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, kid: await calculateJwkThumbprint(publicJwk) };
}

/** A JWT for subject mallory signed by the attacker, with a record planted for its jti. */
async function plantedJwt({ redis, keys }: Setup, kid: string, privateKey: CryptoKey, sequence = Number.MAX_SAFE_INTEGER): Promise<string> {
  const jti = randomUUID().replaceAll('-', '');
  const now = Date.now();
  const record = tokenRecord(
    { tokenId: jti, format: 'jwt', subject: 'mallory', clientId: '', audience: [], scopes: ['admin'], sessionId: '', claims: {}, sequence },
    Math.floor(now / 1000) * 1000,
  );
  await redis.set(keys.token(jti), JSON.stringify(record), 'PX', HOUR);
  return new SignJWT({ scope: 'admin' })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid })
    .setIssuer(ISSUER).setSubject('mallory').setJti(jti)
    .setIssuedAt(Math.floor(now / 1000)).setExpirationTime(Math.floor(now / 1000) + 3600)
    .sign(privateKey);
}

describe('the key ring under write access to Redis', () => {
  it('ignores a planted "retiring" key: not listed, not published, verifies nothing', async () => {
    const target = await setup();
    const attacker = await attackerKey();
    const planted: StoredKey = {
      kid: attacker.kid, algorithm: 'EdDSA', state: 'retiring', createdAt: Date.now() - HOUR, retiresAt: Date.now() + HOUR,
      publicJwk: { ...attacker.publicJwk, kid: attacker.kid, alg: 'EdDSA', use: 'sig' } as StoredKey['publicJwk'],
      sealedPrivateKey: 'AAAA',
    };
    // Even with a MAC copied from a genuine entry.
    await rewriteRing(target, (entries) => [...entries, { ...planted, mac: (entries[0] as StoredKey).mac }]);
    const listed = await target.service.listKeys();
    expect(listed.map((key) => key.kid)).not.toContain(attacker.kid);
    expect(listed).toHaveLength(1);
    const forged = await plantedJwt(target, attacker.kid, attacker.privateKey);
    expect(await target.service.introspect({ token: forged })).toMatchObject({ active: false });
    expect(target.tampered).toContainEqual(['key ring entry', attacker.kid]);
  });

  it('ignores one of its own entries whose public key or times were changed', async () => {
    const target = await setup();
    await target.service.rotateKeys();
    const [retiring] = (await target.service.listKeys()).filter((key) => key.state === 'retiring');
    const attacker = await attackerKey();
    await rewriteRing(target, (entries) =>
      entries.map((entry) =>
        (entry as StoredKey).kid === retiring!.kid
          ? { ...(entry as StoredKey), retiresAt: Date.now() + 1000 * HOUR, publicJwk: { ...attacker.publicJwk, kid: retiring!.kid, alg: 'EdDSA', use: 'sig' } }
          : entry,
      ),
    );
    const listed = await target.service.listKeys();
    expect(listed.map((key) => key.kid)).not.toContain(retiring!.kid);
    const forged = await plantedJwt(target, retiring!.kid, attacker.privateKey);
    expect(await target.service.introspect({ token: forged })).toMatchObject({ active: false });
    expect(target.tampered).toContainEqual(['key ring entry', retiring!.kid]);
    // The genuine active key still signs and verifies.
    const issued = await target.service.issue({ subject: 'alice', format: 'jwt' });
    expect((await target.service.introspect({ token: issued.token })).active).toBe(true);
  });

  it('ignores entries that are not key entries at all, without failing', async () => {
    const target = await setup();
    await rewriteRing(target, (entries) => [...entries, 42, null, 'x', [], { kid: 7 }, { kid: 'k', mac: 5 }]);
    expect(await target.service.listKeys()).toHaveLength(1);
    const issued = await target.service.issue({ subject: 'alice', format: 'jwt' });
    expect((await target.service.introspect({ token: issued.token })).active).toBe(true);
  });
});

describe('token records under write access to Redis', () => {
  it.each<[string, (record: TokenRecord) => TokenRecord]>([
    ['its subject', (record) => ({ ...record, subject: 'mallory' })],
    ['its scopes', (record) => ({ ...record, scopes: [...record.scopes, 'admin'] })],
    ['its claims', (record) => ({ ...record, claims: { role: 'admin' } })],
    ['its lifetime', (record) => ({ ...record, expiresAt: record.expiresAt + 100 * HOUR })],
    ['its revocation sequence', (record) => ({ ...record, sequence: Number.MAX_SAFE_INTEGER })],
    ['its audiences', (record) => ({ ...record, audience: ['billing'] })],
    ['its token id', (record) => ({ ...record, tokenId: 'x' })],
  ])('names no token once %s was changed', async (_name, change) => {
    const target = await setup();
    const issued = await target.service.issue({ subject: 'alice', audience: ['orders'], scopes: ['read'], claims: { role: 'user' } });
    const key = target.keys.token(issued.tokenId);
    const record = JSON.parse((await target.redis.get(key))!) as TokenRecord;
    await target.redis.set(key, JSON.stringify(change(record)), 'PX', HOUR);
    expect(await target.service.introspect({ token: issued.token })).toMatchObject({ active: false, reason: 'unknown' });
    expect(target.tampered).toContainEqual(['token record', issued.tokenId]);
  });

  it('trusts no record made up for a JWT signed by its own key', async () => {
    const target = await setup();
    const real = await target.service.issue({ subject: 'alice', format: 'jwt' });
    // The attacker cannot sign: the record of a real JWT, re-planted with a raised sequence, must not un-revoke it.
    await target.service.revoke({ kind: 'subject', value: 'alice' });
    const key = target.keys.token(real.tokenId);
    const record = JSON.parse((await target.redis.get(key))!) as TokenRecord;
    await target.redis.set(key, JSON.stringify({ ...record, sequence: record.sequence + 1_000 }), 'PX', HOUR);
    expect((await target.service.introspect({ token: real.token })).active).toBe(false);
  });
});
