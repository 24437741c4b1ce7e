// ML-DSA JWTs (RFC 9964) and a ring with one active key per algorithm: keys
// added beside each other, a default that moves, algorithms retired, each
// rotated on schedule, and bad requests refused with nothing written.
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { decodeProtectedHeader } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { FailedPreconditionError, InvalidArgumentError, KeyRingError } from '../../src/core/errors.js';
import { POST_QUANTUM_SIGNING_ALGORITHMS, type PublicKeyInfo, type SigningAlgorithm, type StoredKey } from '../../src/core/types.js';
import { withRingMac } from '../../src/core/keys/ring-mac.js';
import { HOUR, startReplica, type Replica } from './fixtures.js';

const started: Replica[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map(({ service }) => service.stop()));
});

async function replica(overrides: Parameters<typeof startReplica>[0] = {}): Promise<Replica> {
  const made = await startReplica(overrides);
  started.push(made);
  return made;
}

const NOBLE = { 'ML-DSA-44': ml_dsa44, 'ML-DSA-65': ml_dsa65, 'ML-DSA-87': ml_dsa87 } as const;

/** Verifies a compact JWS with @noble/post-quantum, an implementation that is not OpenSSL. */
function nobleVerifies(jwt: string, key: PublicKeyInfo): boolean {
  const [header, payload, signature] = jwt.split('.');
  const publicKey = Buffer.from(key.publicJwk.pub as string, 'base64url');
  const dsa = NOBLE[key.algorithm as keyof typeof NOBLE];
  return dsa.verify(Buffer.from(signature!, 'base64url'), Buffer.from(`${header}.${payload}`, 'ascii'), publicKey);
}

function summary(ring: PublicKeyInfo[]): Array<[string, string, boolean]> {
  return ring.map((key) => [key.algorithm, key.state, key.default]);
}

describe.each(POST_QUANTUM_SIGNING_ALGORITHMS)('%s JWTs', (algorithm) => {
  it('are signed as RFC 9068 access tokens, introspect active, and verify with another implementation against the published key', async () => {
    const { service } = await replica({ keyAlgorithm: algorithm });
    const issued = await service.issue({ subject: 'alice', format: 'jwt', audience: ['orders'], scopes: ['read'] });
    expect(issued.algorithm).toBe(algorithm);
    const [key] = await service.listKeys();
    expect(decodeProtectedHeader(issued.token)).toEqual({ alg: algorithm, typ: 'at+jwt', kid: key!.kid });
    expect(await service.introspect({ token: issued.token })).toMatchObject({ active: true, subject: 'alice', tokenId: issued.tokenId });
    expect(nobleVerifies(issued.token, key!)).toBe(true);
  });

  it('with an altered signature introspect inactive and fail the other implementation too', async () => {
    const { service } = await replica({ keyAlgorithm: algorithm });
    const issued = await service.issue({ subject: 'alice', format: 'jwt' });
    const [header, payload, signature] = issued.token.split('.');
    const bytes = Buffer.from(signature!, 'base64url');
    bytes[100]! ^= 0x01;
    const altered = `${header}.${payload}.${bytes.toString('base64url')}`;
    expect(await service.introspect({ token: altered })).toMatchObject({ active: false, reason: 'bad_signature' });
    const [key] = await service.listKeys();
    expect(nobleVerifies(altered, key!)).toBe(false);
  });

  it('publish an AKP public key and keep the seed sealed', async () => {
    const { service, store } = await replica({ keyAlgorithm: algorithm });
    const [key] = await service.listKeys();
    expect(Object.keys(key!.publicJwk).sort()).toEqual(['alg', 'kid', 'kty', 'pub', 'use']);
    expect(key!.publicJwk).toMatchObject({ kty: 'AKP', alg: algorithm, use: 'sig' });
    const { keys } = await store.readKeyRing();
    expect(JSON.stringify(keys)).not.toMatch(/"priv"/);
  });

  it('sign statements (phantom tokens, signed introspection answers) when the internal key\'s algorithm, apart from the ring', async () => {
    const { service } = await replica({ keyAlgorithm: algorithm, internalKeyAlgorithm: algorithm });
    const statement = await service.signStatement({ sub: 'alice' }, { type: 'token-introspection+jwt', ttlMs: 30_000 });
    const [internal] = service.internalKeys();
    expect(decodeProtectedHeader(statement)).toMatchObject({ alg: algorithm, kid: internal!.kid });
    expect(nobleVerifies(statement, { algorithm, publicJwk: internal! } as unknown as PublicKeyInfo)).toBe(true);
    // Never a ring key: no access-token verifier can take a statement for a token.
    expect((await service.listKeys()).map((key) => key.kid)).not.toContain(internal!.kid);
  });
});

describe('a ring with several algorithms', () => {
  it('adds an algorithm beside the default, and Issue picks it by name or takes the default', async () => {
    const { service } = await replica();
    const ring = await service.rotateKeys('ML-DSA-65');
    expect(summary(ring)).toEqual([
      ['EdDSA', 'active', true],
      ['ML-DSA-65', 'active', false],
    ]);
    const classical = await service.issue({ subject: 'alice', format: 'jwt' });
    const quantumSafe = await service.issue({ subject: 'alice', format: 'jwt', algorithm: 'ML-DSA-65' });
    expect(decodeProtectedHeader(classical.token)).toMatchObject({ alg: 'EdDSA', kid: ring[0]!.kid });
    expect(decodeProtectedHeader(quantumSafe.token)).toMatchObject({ alg: 'ML-DSA-65', kid: ring[1]!.kid });
    expect((await service.introspect({ token: classical.token })).active).toBe(true);
    expect((await service.introspect({ token: quantumSafe.token })).active).toBe(true);
  });

  it('rotates one algorithm and leaves the others', async () => {
    const { service } = await replica();
    const [eddsa, firstMlDsa] = await service.rotateKeys('ML-DSA-65');
    const ring = await service.rotateKeys('ML-DSA-65');
    expect(ring.map((key) => [key.kid, key.state])).toEqual([
      [eddsa!.kid, 'active'],
      [firstMlDsa!.kid, 'retiring'],
      [expect.any(String), 'active'],
    ]);
    // Empty rotates the default algorithm's key.
    const after = await service.rotateKeys();
    expect(summary(after)).toEqual([
      ['EdDSA', 'retiring', false],
      ['ML-DSA-65', 'retiring', false],
      ['ML-DSA-65', 'active', false],
      ['EdDSA', 'active', true],
    ]);
  });

  it('moves the default, then retires the old algorithm whose JWTs stay active until they expire', async () => {
    const { service, clock } = await replica();
    const old = await service.issue({ subject: 'alice', format: 'jwt', ttlMs: HOUR });
    await service.rotateKeys('ML-DSA-65');
    expect(summary(await service.setDefaultAlgorithm('ML-DSA-65'))).toEqual([
      ['EdDSA', 'active', false],
      ['ML-DSA-65', 'active', true],
    ]);
    const fresh = await service.issue({ subject: 'alice', format: 'jwt' });
    expect(fresh.algorithm).toBe('ML-DSA-65');
    const retired = await service.retireAlgorithm('EdDSA');
    expect(summary(retired)).toEqual([
      ['EdDSA', 'retiring', false],
      ['ML-DSA-65', 'active', true],
    ]);
    expect(retired[0]!.retiresAt).toBe(clock.now() + 24 * HOUR + 60_000);
    await expect(service.issue({ subject: 'alice', format: 'jwt', algorithm: 'EdDSA' })).rejects.toBeInstanceOf(FailedPreconditionError);
    expect((await service.introspect({ token: old.token })).active).toBe(true);
    clock.advance(HOUR);
    expect(await service.introspect({ token: old.token })).toMatchObject({ active: false, reason: 'expired' });
    clock.set(retired[0]!.retiresAt!);
    expect(summary(await service.listKeys())).toEqual([['ML-DSA-65', 'active', true]]);
  });

  it('takes a ring written before there were defaults (one active key, unmarked): that key stays the default', async () => {
    const { service, store, secrets } = await replica();
    const snapshot = await store.readKeyRing();
    // As the ring was written then (its MAC made afresh under this master key, as a rolling upgrade's first write would).
    const [legacy] = snapshot.keys.map(({ default: _marked, mac: _mac, ...key }) => withRingMac(key, secrets.integrityKey));
    expect(await store.writeKeyRing(snapshot.version, [legacy!])).toBe(true);
    const ring = await service.rotateKeys('ML-DSA-65');
    expect(ring.map((key) => [key.kid, key.default])).toEqual([
      [legacy!.kid, true],
      [expect.any(String), false],
    ]);
    expect((await service.issue({ subject: 'alice', format: 'jwt' })).algorithm).toBe('EdDSA');
  });

  it('an Issue naming an algorithm another replica just added finds its key without waiting for a refresh', async () => {
    const first = await replica({ keyRefreshMs: 3_600_000 });
    const second = await replica({ store: first.store, secrets: first.secrets, keyRefreshMs: 3_600_000 });
    await first.service.rotateKeys('ML-DSA-44');
    expect((await second.service.issue({ subject: 'alice', format: 'jwt', algorithm: 'ML-DSA-44' })).algorithm).toBe('ML-DSA-44');
  });

  it('is seen by another replica: the default it moved and the algorithm it added', async () => {
    const first = await replica();
    const second = await replica({ store: first.store, secrets: first.secrets, keyRefreshMs: 60_000 });
    await first.service.rotateKeys('ML-DSA-44');
    await first.service.setDefaultAlgorithm('ML-DSA-44');
    await second.service.listKeys();
    expect((await second.service.issue({ subject: 'alice', format: 'jwt' })).algorithm).toBe('ML-DSA-44');
    expect((await second.service.issue({ subject: 'alice', format: 'jwt', algorithm: 'EdDSA' })).algorithm).toBe('EdDSA');
  });

  it('rotates every active algorithm on schedule, each once per interval across three replicas', async () => {
    const interval = 10 * 60_000;
    const first = await replica({ keyRotationIntervalMs: interval });
    await first.service.rotateKeys('ML-DSA-65');
    const others = await Promise.all([1, 2].map(() => replica({ keyRotationIntervalMs: interval, store: first.store, secrets: first.secrets, clock: first.clock })));
    const all = [first, ...others];
    for (let round = 1; round <= 2; round++) {
      first.clock.advance(interval);
      await Promise.all(all.map(({ service }) => service.listKeys()));
      const ring = await first.service.listKeys();
      expect(ring, `round ${round}`).toHaveLength(2 + 2 * round);
      expect(summary(ring.filter((key) => key.state === 'active')).sort()).toEqual([
        ['EdDSA', 'active', true],
        ['ML-DSA-65', 'active', false],
      ]);
    }
  });
});

describe('bad key ring requests', () => {
  async function unchanged(replicaUnderTest: Replica, attempt: () => Promise<unknown>, error: new (...args: never[]) => Error, message: RegExp) {
    const before = await replicaUnderTest.store.readKeyRing();
    const failure = await attempt().catch((thrown: unknown) => thrown);
    expect(failure).toBeInstanceOf(error);
    expect((failure as Error).message).toMatch(message);
    expect(await replicaUnderTest.store.readKeyRing()).toEqual(before);
  }

  it.each<[string, (service: Replica['service']) => Promise<unknown>, new (...args: never[]) => Error, RegExp]>([
    ['Issue naming an algorithm with no active key', (service) => service.issue({ subject: 'a', format: 'jwt', algorithm: 'ML-DSA-87' }), FailedPreconditionError, /ML-DSA-87 has no active signing key/],
    ['Issue naming an unknown algorithm', (service) => service.issue({ subject: 'a', format: 'jwt', algorithm: 'HS256' as SigningAlgorithm }), InvalidArgumentError, /^algorithm: must be one of/],
    ['an opaque Issue naming an algorithm', (service) => service.issue({ subject: 'a', algorithm: 'EdDSA' }), InvalidArgumentError, /^algorithm: only a JWT is signed/],
    ['a rotation to an algorithm the runtime cannot do', (service) => service.rotateKeys('ML-DSA-1024' as SigningAlgorithm), FailedPreconditionError, /this runtime cannot make ML-DSA-1024 keys/],
    ['making an algorithm with no active key the default', (service) => service.setDefaultAlgorithm('ES256'), FailedPreconditionError, /ES256 has no active key/],
    ['retiring the default algorithm', (service) => service.retireAlgorithm('EdDSA'), FailedPreconditionError, /EdDSA is the default/],
    ['retiring an algorithm with no active key', (service) => service.retireAlgorithm('PS256'), FailedPreconditionError, /PS256 has no active key to retire/],
  ])('%s fails with a clear error and writes nothing', async (_name, attempt, error, message) => {
    const subject = await replica();
    await unchanged(subject, () => attempt(subject.service), error, message);
  });

  it('a malformed AKP key in the ring stops a replica from loading it, naming the key', async () => {
    const first = await replica({ keyAlgorithm: 'ML-DSA-65' });
    const snapshot = await first.store.readKeyRing();
    const [key] = snapshot.keys;
    // Written by a replica holding the master key (a bug, not an attacker: the integrity check would drop the latter's entry).
    const broken: StoredKey = withRingMac({ ...key!, publicJwk: { ...key!.publicJwk, pub: 'AAAA' } }, first.secrets.integrityKey);
    expect(await first.store.writeKeyRing(snapshot.version, [broken])).toBe(true);
    const failure = await replica({ store: first.store, secrets: first.secrets }).catch((thrown: unknown) => thrown);
    expect(failure).toBeInstanceOf(KeyRingError);
    expect((failure as Error).message).toContain(`kid ${key!.kid} (ML-DSA-65)`);
    // The replica that had the good ring keeps serving from it.
    expect((await first.service.issue({ subject: 'alice', format: 'jwt' })).algorithm).toBe('ML-DSA-65');
  });
});
