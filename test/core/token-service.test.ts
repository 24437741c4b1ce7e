import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair, importJWK } from 'jose';
import { InvalidArgumentError, KeyRingError } from '../../src/core/errors.js';
import { deriveSecrets } from '../../src/core/secrets.js';
import type { Introspection, TokenFormat } from '../../src/core/types.js';
import { HOUR, startReplica, type Replica } from './fixtures.js';

const replicas: Replica[] = [];
async function replica(...args: Parameters<typeof startReplica>): Promise<Replica> {
  const started = await startReplica(...args);
  replicas.push(started);
  return started;
}
afterEach(async () => {
  for (const { service, store } of replicas.splice(0)) {
    await service.stop();
    await store.close();
  }
});

function expectInactive(answer: Introspection): void {
  expect(answer.active).toBe(false);
}

describe.each<TokenFormat>(['opaque', 'jwt'])('a %s token', (format) => {
  it('introspects active with everything it was issued with', async () => {
    const { service, clock } = await replica();
    const issued = await service.issue({
      subject: 'alice',
      clientId: 'orders-app',
      audience: ['orders', 'billing'],
      scopes: ['orders:read', 'orders:write'],
      sessionId: 'session-1',
      claims: { tenant: 'acme', tier: 3 },
      format,
    });
    expect(issued.format).toBe(format);
    expect(issued.expiresAt - issued.issuedAt).toBe(HOUR);
    const answer = await service.introspect({ token: issued.token });
    expect(answer).toEqual({
      active: true,
      tokenId: issued.tokenId,
      format,
      subject: 'alice',
      clientId: 'orders-app',
      audience: ['orders', 'billing'],
      scopes: ['orders:read', 'orders:write'],
      sessionId: 'session-1',
      claims: { tenant: 'acme', tier: 3 },
      issuedAt: Math.floor(clock.now() / 1000) * 1000,
      expiresAt: issued.expiresAt,
      issuer: 'https://tally.test',
    });
  });

  it('goes inactive the moment it expires', async () => {
    const { service, clock } = await replica();
    const issued = await service.issue({ subject: 'alice', format, ttlMs: 60_000 });
    clock.set(issued.expiresAt - 1);
    expect((await service.introspect({ token: issued.token })).active).toBe(true);
    clock.set(issued.expiresAt);
    expect(await service.introspect({ token: issued.token })).toMatchObject({ active: false, reason: 'expired' });
  });

  it('is inactive for an audience it does not name, and without a required scope', async () => {
    const { service } = await replica();
    const { token } = await service.issue({ subject: 'alice', format, audience: ['orders'], scopes: ['read'] });
    expect((await service.introspect({ token, audience: 'orders', requiredScopes: ['read'] })).active).toBe(true);
    expect(await service.introspect({ token, audience: 'billing' })).toMatchObject({ active: false, reason: 'wrong_audience' });
    expect(await service.introspect({ token, requiredScopes: ['read', 'write'] })).toMatchObject({ active: false, reason: 'missing_scope' });
  });

  it.each([
    ['its value', (token: string) => ({ kind: 'token' as const, token })],
    ['its token id', (_token: string, tokenId: string) => ({ kind: 'tokenId' as const, tokenId })],
    ['its subject', () => ({ kind: 'subject' as const, value: 'alice' })],
    ['its client', () => ({ kind: 'client' as const, value: 'orders-app' })],
    ['its session', () => ({ kind: 'session' as const, value: 'session-1' })],
  ])('is inactive once revoked by %s, and leaves other tokens alone', async (_name, target) => {
    const { service } = await replica();
    const issued = await service.issue({ subject: 'alice', clientId: 'orders-app', sessionId: 'session-1', format });
    const bystander = await service.issue({ subject: 'bob', clientId: 'other-app', sessionId: 'session-2', format });
    await service.revoke(target(issued.token, issued.tokenId));
    expectInactive(await service.introspect({ token: issued.token }));
    expect((await service.introspect({ token: bystander.token })).active).toBe(true);
  });

  it('is active when issued after a revocation of its subject returned', async () => {
    const { service } = await replica();
    const before = await service.issue({ subject: 'alice', format });
    await service.revoke({ kind: 'subject', value: 'alice' });
    const after = await service.issue({ subject: 'alice', format });
    expect(await service.introspect({ token: before.token })).toMatchObject({ active: false, reason: 'revoked' });
    expect((await service.introspect({ token: after.token })).active).toBe(true);
  });

  it('is seen by a second replica on the same store, and revoked there by the first', async () => {
    const first = await replica();
    const second = await replica({ store: first.store, secrets: first.secrets });
    const issued = await first.service.issue({ subject: 'alice', format });
    expect((await second.service.introspect({ token: issued.token })).active).toBe(true);
    await first.service.revoke({ kind: 'subject', value: 'alice' });
    expectInactive(await second.service.introspect({ token: issued.token }));
  });
});

describe('revocation', () => {
  it('succeeds for things never issued (no oracle, RFC 7009)', async () => {
    const { service } = await replica();
    await expect(service.revoke({ kind: 'token', token: 'tly_nothing' })).resolves.toBeUndefined();
    await expect(service.revoke({ kind: 'tokenId', tokenId: 'AAAAAAAAAAAAAAAAAAAAAA' })).resolves.toBeUndefined();
    await expect(service.revoke({ kind: 'subject', value: 'nobody' })).resolves.toBeUndefined();
  });

  it.each([
    ['an empty token', { kind: 'token' as const, token: '' }, 'token'],
    ['a token id with foreign characters', { kind: 'tokenId' as const, tokenId: 'a b' }, 'token_id'],
    ['an empty subject', { kind: 'subject' as const, value: '' }, 'subject'],
    ['a client id with a newline', { kind: 'client' as const, value: 'a\nb' }, 'client_id'],
  ])('refuses %s, naming the field', async (_name, target, field) => {
    const { service } = await replica();
    await expect(service.revoke(target)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field });
  });

  it('by subject covers tokens of every format and does not depend on the replicas agreeing on the time', async () => {
    const first = await replica();
    const second = await replica({ store: first.store, secrets: first.secrets });
    // The second replica's clock runs ten minutes behind: a wall-clock cut-off would spare its tokens.
    second.clock.advance(-10 * 60_000);
    const opaque = await first.service.issue({ subject: 'alice' });
    const jwt = await first.service.issue({ subject: 'alice', format: 'jwt' });
    await second.service.revoke({ kind: 'subject', value: 'alice' });
    const later = await first.service.issue({ subject: 'alice' });
    for (const service of [first.service, second.service]) {
      expectInactive(await service.introspect({ token: opaque.token }));
      expectInactive(await service.introspect({ token: jwt.token }));
      expect((await service.introspect({ token: later.token })).active).toBe(true);
    }
  });
});

describe('issue', () => {
  it.each([
    ['no subject', { subject: '' }, 'subject'],
    ['a subject over 256 characters', { subject: 'x'.repeat(257) }, 'subject'],
    ['a subject with a control character', { subject: 'a\u0000b' }, 'subject'],
    ['a lone surrogate', { subject: 'a\ud800' }, 'subject'],
    ['a scope with a space', { subject: 'a', scopes: ['read write'] }, 'scopes'],
    ['a lifetime over the maximum', { subject: 'a', ttlMs: 25 * HOUR }, 'ttl'],
    ['a lifetime under a second', { subject: 'a', ttlMs: 10 }, 'ttl'],
    ['a registered claim', { subject: 'a', claims: { sub: 'mallory' } }, 'claims'],
    ['huge claims', { subject: 'a', claims: { blob: 'x'.repeat(10_000) } }, 'claims'],
    ['a registered claim in other case', { subject: 'a', claims: { Sub: 'mallory' } }, 'claims'],
    ['a registered claim in capitals', { subject: 'a', claims: { CLIENT_ID: 'mallory' } }, 'claims'],
    ['an infinite number', { subject: 'a', claims: { n: Number.POSITIVE_INFINITY } }, 'claims'],
    ['NaN deep inside', { subject: 'a', claims: { list: [{ n: Number.NaN }] } }, 'claims'],
    ['a "__proto__" claim', { subject: 'a', claims: JSON.parse('{"__proto__": {"admin": true}}') }, 'claims'],
    ['a nested "__proto__" key', { subject: 'a', claims: JSON.parse('{"profile": {"__proto__": {"admin": true}}}') }, 'claims'],
    ['too many audiences', { subject: 'a', audience: Array.from({ length: 33 }, (_, i) => `aud-${i}`) }, 'audience'],
  ])('refuses %s, naming the field', async (_name, input, field) => {
    const { service } = await replica();
    const failure = service.issue(input);
    await expect(failure).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(failure).rejects.toMatchObject({ field });
  });

  it('mints JWTs in the RFC 9068 profile, signed by the active key', async () => {
    const { service } = await replica();
    const issued = await service.issue({ subject: 'alice', clientId: 'app', audience: ['orders'], scopes: ['a', 'b'], sessionId: 's', format: 'jwt' });
    const header = decodeProtectedHeader(issued.token);
    const [activeKey] = await service.listKeys();
    expect(header).toEqual({ alg: 'EdDSA', typ: 'at+jwt', kid: activeKey!.kid });
    expect(decodeJwt(issued.token)).toEqual({
      iss: 'https://tally.test',
      sub: 'alice',
      aud: 'orders',
      client_id: 'app',
      scope: 'a b',
      sid: 's',
      jti: issued.tokenId,
      iat: issued.issuedAt / 1000,
      exp: issued.expiresAt / 1000,
    });
  });
});

describe('introspection of hostile tokens', () => {
  it.each([
    ['empty', ''],
    ['garbage', 'hello'],
    ['an opaque token with a broken checksum', 'tly_' + 'a'.repeat(49)],
    ['a huge string', 'x'.repeat(100_000)],
    ['three dots', '...'],
    ['a JWT-shaped string of nonsense', 'aaa.bbb.ccc'],
  ])('answers inactive for %s', async (_name, token) => {
    const { service } = await replica();
    expectInactive(await service.introspect({ token }));
  });

  it('answers inactive for a JWT with alg none, even with a known kid and jti', async () => {
    const { service } = await replica();
    const real = await service.issue({ subject: 'alice', format: 'jwt' });
    const header = decodeProtectedHeader(real.token);
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${encode({ ...header, alg: 'none' })}.${encode(decodeJwt(real.token))}.`;
    expectInactive(await service.introspect({ token: unsigned }));
    expectInactive(await service.introspect({ token: unsigned + 'AAAA' }));
  });

  it('answers inactive for a JWT HMAC-signed with the public key (algorithm confusion)', async () => {
    const { service } = await replica({ keyAlgorithm: 'RS256' });
    const real = await service.issue({ subject: 'alice', format: 'jwt' });
    const [key] = await service.listKeys();
    const secret = new TextEncoder().encode(JSON.stringify(key!.publicJwk));
    const forged = await new SignJWT(decodeJwt(real.token)).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: key!.kid }).sign(secret);
    expectInactive(await service.introspect({ token: forged }));
  });

  it('answers inactive for a JWT with a tampered payload', async () => {
    const { service } = await replica();
    const real = await service.issue({ subject: 'alice', format: 'jwt' });
    const [header, , signature] = real.token.split('.');
    const payload = Buffer.from(JSON.stringify({ ...decodeJwt(real.token), sub: 'mallory' })).toString('base64url');
    expect(await service.introspect({ token: `${header}.${payload}.${signature}` })).toMatchObject({ active: false, reason: 'bad_signature' });
  });

  it('answers inactive for a JWT signed by a key outside the ring', async () => {
    const { service } = await replica();
    const real = await service.issue({ subject: 'alice', format: 'jwt' });
    const { privateKey } = await generateKeyPair('EdDSA');
    const forged = await new SignJWT(decodeJwt(real.token)).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'stranger' }).sign(privateKey);
    expect(await service.introspect({ token: forged })).toMatchObject({ active: false, reason: 'unknown_key' });
  });

  it('answers inactive for a well-signed JWT with another issuer, a future nbf, or no record', async () => {
    // A replica whose private key the test can read: it signs with the ring's own key.
    const { service, store, secrets } = await replica();
    const real = await service.issue({ subject: 'alice', format: 'jwt' });
    const { keys } = await store.readKeyRing();
    const { openPrivateKey } = await import('../../src/core/keys/key-encryption.js');
    const privateJwk = JSON.parse(openPrivateKey(keys[0]!.sealedPrivateKey, keys[0]!.kid, secrets.keyEncryptionKey));
    const privateKey = await importJWK(privateJwk, 'EdDSA');
    const claims = decodeJwt(real.token);
    const sign = (payload: object) =>
      new SignJWT({ ...payload }).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: keys[0]!.kid }).sign(privateKey);
    expect(await service.introspect({ token: await sign({ ...claims, iss: 'https://evil.test' }) })).toMatchObject({ active: false });
    expect(await service.introspect({ token: await sign({ ...claims, nbf: claims.exp }) })).toMatchObject({ active: false, reason: 'not_yet_valid' });
    expect(await service.introspect({ token: await sign({ ...claims, jti: 'never-issued' }) })).toMatchObject({ active: false, reason: 'unknown' });
    expect(await service.introspect({ token: await sign({ ...claims, sub: 'mallory' }) })).toMatchObject({ active: false, reason: 'unknown' });
    expect((await service.introspect({ token: real.token })).active).toBe(true);
  });
});

describe('keys', () => {
  it('rotation makes a new active key; JWTs of the old key stay active until they expire', async () => {
    const { service } = await replica();
    const old = await service.issue({ subject: 'alice', format: 'jwt' });
    const ring = await service.rotateKeys('EdDSA');
    expect(ring.map((key) => [key.algorithm, key.state, key.default])).toEqual([
      ['EdDSA', 'retiring', false],
      ['EdDSA', 'active', true],
    ]);
    const fresh = await service.issue({ subject: 'alice', format: 'jwt' });
    expect(decodeProtectedHeader(fresh.token)).toMatchObject({ alg: 'EdDSA', kid: ring[1]!.kid });
    expect((await service.introspect({ token: old.token })).active).toBe(true);
    expect((await service.introspect({ token: fresh.token })).active).toBe(true);
  });

  it('an old key leaves the ring once the longest lifetime plus skew has passed', async () => {
    const { service, clock } = await replica();
    const [first] = await service.rotateKeys();
    expect(first!.state).toBe('retiring');
    expect(first!.retiresAt! - clock.now()).toBe(24 * HOUR + 60_000);
    clock.set(first!.retiresAt! - 1);
    expect((await service.listKeys()).map((key) => key.kid)).toContain(first!.kid);
    clock.set(first!.retiresAt!);
    const after = await service.listKeys();
    expect(after.map((key) => key.kid)).not.toContain(first!.kid);
    expect(after).toHaveLength(1);
  });

  it('a rotation on one replica is used by another sharing the store', async () => {
    const first = await replica();
    const second = await replica({ store: first.store, secrets: first.secrets });
    const oldToken = await second.service.issue({ subject: 'alice', format: 'jwt' });
    const ring = await first.service.rotateKeys();
    const newKid = ring.find((key) => key.state === 'active')!.kid;
    // A JWT naming a kid the second replica has not loaded yet makes it reload.
    const fromFirst = await first.service.issue({ subject: 'alice', format: 'jwt' });
    expect((await second.service.introspect({ token: fromFirst.token })).active).toBe(true);
    const fromSecond = await second.service.issue({ subject: 'alice', format: 'jwt' });
    expect(decodeProtectedHeader(fromSecond.token).kid).toBe(newKid);
    expect((await first.service.introspect({ token: oldToken.token })).active).toBe(true);
  });

  it('two replicas rotating at once make one active key', async () => {
    const first = await replica();
    const second = await replica({ store: first.store, secrets: first.secrets });
    await Promise.all([first.service.rotateKeys(), second.service.rotateKeys()]);
    const ring = await first.service.listKeys();
    expect(ring.filter((key) => key.state === 'active')).toHaveLength(1);
    expect(ring).toHaveLength(3);
  });

  it('refuses to start on a store set up under another master key', async () => {
    const first = await replica();
    const intruder = replica({ store: first.store, secrets: deriveSecrets(new Uint8Array(randomBytes(32))) });
    await expect(intruder).rejects.toBeInstanceOf(KeyRingError);
  });

  it('shows public parts only', async () => {
    const { service, store } = await replica({ keyAlgorithm: 'RS256' });
    const [key] = await service.listKeys();
    expect(Object.keys(key!.publicJwk).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
    const { keys } = await store.readKeyRing();
    expect(keys[0]!.sealedPrivateKey).not.toMatch(/"d"/);
  });
});

describe('callers limited to their audiences', () => {
  it('see tokens naming one of their audiences and nothing else', async () => {
    const { service } = await replica();
    const ours = await service.issue({ subject: 'alice', audience: ['orders', 'shared'] });
    const theirs = await service.issue({ subject: 'alice', audience: ['billing'] });
    const nobodys = await service.issue({ subject: 'alice' });
    expect((await service.introspect({ token: ours.token, callerAudiences: ['orders'] })).active).toBe(true);
    expect(await service.introspect({ token: theirs.token, callerAudiences: ['orders'] })).toMatchObject({ active: false, reason: 'caller_audience' });
    expect(await service.introspect({ token: nobodys.token, callerAudiences: ['orders'] })).toMatchObject({ active: false, reason: 'caller_audience' });
  });

  it('can revoke only tokens naming one of their audiences, by value or by id', async () => {
    const { service } = await replica();
    const theirs = await service.issue({ subject: 'alice', audience: ['billing'] });
    const ours = await service.issue({ subject: 'alice', audience: ['orders'] });
    await service.revoke({ kind: 'token', token: theirs.token }, { callerAudiences: ['orders'] });
    await service.revoke({ kind: 'tokenId', tokenId: theirs.tokenId }, { callerAudiences: ['orders'] });
    expect((await service.introspect({ token: theirs.token })).active).toBe(true);
    await service.revoke({ kind: 'tokenId', tokenId: ours.tokenId }, { callerAudiences: ['orders'] });
    expect((await service.introspect({ token: ours.token })).active).toBe(false);
  });
});

describe('signed statements', () => {
  it('are signed by the internal key, verifiable with internalKeys(), and carry the type asked for', async () => {
    const { service, clock } = await replica();
    const jwt = await service.signStatement({ sub: 'alice', scope: 'read' }, { type: 'token-introspection+jwt', ttlMs: 30_000 });
    const [key] = service.internalKeys();
    const { jwtVerify } = await import('jose');
    const { payload, protectedHeader } = await jwtVerify(jwt, await importJWK(key as never, 'EdDSA'), {
      currentDate: new Date(clock.now()),
    });
    expect(protectedHeader).toEqual({ alg: 'EdDSA', typ: 'token-introspection+jwt', kid: key!.kid });
    expect(payload).toMatchObject({ sub: 'alice', scope: 'read', iss: 'https://tally.test' });
    expect(payload.exp! - payload.iat!).toBe(30);
  });

  it('are never signed by a ring key, so nothing takes them for access tokens, even typed at+jwt', async () => {
    const { service, clock } = await replica();
    const issued = await service.issue({ subject: 'alice', format: 'jwt' });
    // A statement shaped exactly like an access token, with a record behind its jti.
    const jwt = await service.signStatement({ sub: 'alice', jti: issued.tokenId }, { type: 'at+jwt', ttlMs: 30_000 });
    expect(await service.introspect({ token: jwt })).toMatchObject({ active: false, reason: 'unknown_key' });
    const ringKids = (await service.listKeys()).map((key) => key.kid);
    expect(ringKids).not.toContain(decodeProtectedHeader(jwt).kid);
    const { createLocalJWKSet, jwtVerify } = await import('jose');
    const ringJwks = createLocalJWKSet({ keys: (await service.listKeys()).map((key) => key.publicJwk) as never });
    await expect(jwtVerify(jwt, ringJwks, { currentDate: new Date(clock.now()) })).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });

  it('use one internal key on every replica of one master secret, and another under another', async () => {
    const first = await replica();
    const second = await replica({ store: first.store, secrets: first.secrets });
    const stranger = await replica();
    expect(second.service.internalKeys()).toEqual(first.service.internalKeys());
    expect(stranger.service.internalKeys()[0]!.kid).not.toBe(first.service.internalKeys()[0]!.kid);
  });
});

describe('scheduled rotation', () => {
  it('replaces the active key once per interval, made by exactly one of three replicas', async () => {
    const interval = 10 * 60_000;
    const first = await replica({ keyRotationIntervalMs: interval });
    const others = await Promise.all([1, 2].map(() => replica({ keyRotationIntervalMs: interval, store: first.store, secrets: first.secrets, clock: first.clock })));
    const all = [first, ...others];
    const activeKid = async () => (await first.service.listKeys()).find((key) => key.state === 'active')!.kid;
    const initial = await activeKid();

    first.clock.advance(interval - 1);
    await Promise.all(all.map(({ service }) => service.listKeys()));
    expect(await activeKid()).toBe(initial);

    for (let round = 1; round <= 3; round++) {
      first.clock.advance(interval);
      // Every replica's periodic check runs at once; listKeys runs the same check.
      await Promise.all(all.map(({ service }) => service.listKeys()));
      const ring = await first.service.listKeys();
      expect(ring, `round ${round}`).toHaveLength(1 + round);
      expect(ring.filter((key) => key.state === 'active')).toHaveLength(1);
    }
  });

  it('keeps the current algorithm', async () => {
    const { service, clock } = await replica({ keyRotationIntervalMs: 60_000, keyAlgorithm: 'ES384' });
    clock.advance(60_000);
    const ring = await service.listKeys();
    expect(ring.map((key) => [key.algorithm, key.state])).toEqual([
      ['ES384', 'retiring'],
      ['ES384', 'active'],
    ]);
  });
});
