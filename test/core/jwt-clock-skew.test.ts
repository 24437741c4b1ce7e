// TALLY_CLOCK_SKEW applies to the times a JWT states, as its documentation
// says: a JWT whose "nbf" lies less than the skew ahead is valid now.
import { afterEach, describe, expect, it } from 'vitest';
import { SignJWT, decodeJwt, importJWK } from 'jose';
import { openPrivateKey } from '../../src/core/keys/key-encryption.js';
import { startReplica, type Replica } from './fixtures.js';

const replicas: Replica[] = [];
afterEach(async () => {
  for (const { service, store } of replicas.splice(0)) {
    await service.stop();
    await store.close();
  }
});

describe('JWT times are judged with TALLY_CLOCK_SKEW', () => {
  it('accepts "nbf" up to the skew ahead and refuses it beyond', async () => {
    const replica = await startReplica({ clockSkewMs: 60_000 });
    replicas.push(replica);
    const { service, store, secrets, clock } = replica;
    const real = await service.issue({ subject: 'alice', format: 'jwt' });
    // Signed with the ring's own key, as a replica whose clock runs ahead would stamp it.
    const { keys } = await store.readKeyRing();
    const privateKey = await importJWK(JSON.parse(openPrivateKey(keys[0]!.sealedPrivateKey, keys[0]!.kid, secrets.keyEncryptionKey)), 'EdDSA');
    const sign = (nbfAheadSeconds: number) =>
      new SignJWT({ ...decodeJwt(real.token), nbf: Math.floor(clock.now() / 1000) + nbfAheadSeconds })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: keys[0]!.kid })
        .sign(privateKey);
    expect((await service.introspect({ token: await sign(30) })).active).toBe(true);
    expect(await service.introspect({ token: await sign(90) })).toMatchObject({ active: false, reason: 'not_yet_valid' });
  });
});
