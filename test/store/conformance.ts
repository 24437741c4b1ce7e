// The one suite every Store must pass: the contract of src/core/ports.ts,
// checked the same way for every engine. An engine's test file hands it a
// factory and nothing else.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.js';
import type { Clock, Store, StoreEvent } from '../../src/core/ports.js';
import type { TokenRecord } from '../../src/core/types.js';
import { storedKey, tokenRecord } from '../support/store-records.js';

export interface StoreHarness {
  store: Store;
  /** The clock the store was given. */
  clock: Clock;
  /**
   * Lets ms of the store's time pass: instant for a store on a fake clock; a
   * short real wait for one whose expiry runs on a server's clock.
   */
  passTime(ms: number): Promise<void>;
  /** Releases whatever the harness holds besides the store. */
  dispose?(): Promise<void>;
}

export type StoreFactory = () => Promise<StoreHarness>;

export interface ConformanceOptions {
  /**
   * Why this store offers no ViewHolders (store.holders), when it does not:
   * the suite then checks that it really does not, instead of its holder
   * tests.
   */
  withoutHolders?: string;
}

/** Real-time expiry tests use spans this short so they stay fast and bounded. */
const SHORT_MS = 150;
const LONG_KEEP_MS = 60 * 60 * 1000;

export function describeStoreConformance(name: string, factory: StoreFactory, options: ConformanceOptions = {}): void {
  describe(`${name} store conformance`, () => {
    let harness: StoreHarness;
    let store: Store;

    beforeEach(async () => {
      harness = await factory();
      store = harness.store;
    });

    afterEach(async () => {
      await store.close();
      await harness.dispose?.();
    });

    /** A record issued now on the store's clock. */
    function record(overrides: Partial<TokenRecord> = {}): TokenRecord {
      return tokenRecord(overrides, harness.clock.now());
    }

    describe('token records', () => {
      it('gives back a saved record exactly as it was saved', async () => {
        const saved = record();
        await store.putToken(saved);
        expect(await store.getToken(saved.tokenId)).toEqual(saved);
      });

      it('answers undefined for a token id never saved', async () => {
        expect(await store.getToken('never-saved')).toBeUndefined();
      });

      it('replaces the record when the same token id is saved again', async () => {
        await store.putToken(record({ subject: 'first' }));
        await store.putToken(record({ subject: 'second' }));
        expect((await store.getToken('token-1'))?.subject).toBe('second');
      });

      it('is not changed by the caller mutating a record after saving or reading it', async () => {
        const saved = record();
        const original = structuredClone(saved);
        await store.putToken(saved);
        saved.scopes.push('admin');
        const read = await store.getToken('token-1');
        // A store may hand out a copy or a frozen record; either way the next reader sees the original.
        try {
          read?.audience.push('elsewhere');
        } catch (error) {
          expect(error).toBeInstanceOf(TypeError);
        }
        expect(await store.getToken('token-1')).toEqual(original);
      });

      it('keeps token ids that differ only in braces, colons or unicode apart', async () => {
        const tokenIds = ['', ' ', '{', '}', '{}', 'a', '{a}', 'a}', '{a', 'a:b', 'tok:{a}', 'ü', 'u\u0308', '😀', 'a\u0000b'];
        await Promise.all(tokenIds.map((tokenId, index) => store.putToken(record({ tokenId, sequence: index }))));
        for (const [index, tokenId] of tokenIds.entries()) {
          expect(await store.getToken(tokenId), `token id ${JSON.stringify(tokenId)}`).toMatchObject({
            tokenId,
            sequence: index,
          });
        }
      });

      it('returns a record until it expires and forgets it after expiresAt', async () => {
        const now = harness.clock.now();
        await store.putToken(record({ expiresAt: now + 2 * SHORT_MS }));
        await harness.passTime(SHORT_MS);
        expect(await store.getToken('token-1')).toBeDefined();
        await harness.passTime(2 * SHORT_MS);
        expect(await store.getToken('token-1')).toBeUndefined();
      });

      it('never returns a record saved after its expiresAt', async () => {
        const now = harness.clock.now();
        await store.putToken(record({ issuedAt: now - 2000, expiresAt: now - 1000 }));
        expect(await store.getToken('token-1')).toBeUndefined();
      });

      it('forgets an older copy when a record is saved again already expired', async () => {
        await store.putToken(record());
        await store.putToken(record({ expiresAt: harness.clock.now() - 1 }));
        expect(await store.getToken('token-1')).toBeUndefined();
      });
    });

    describe('revocation sequence and marks', () => {
      it('starts the revocation sequence at 0 with no marks anywhere', async () => {
        expect(await store.revocationSequence()).toBe(0);
        expect(await store.revocationMark([])).toBe(0);
        expect(await store.revocationMark([['subject', 'alice'], ['client', 'orders'], ['session', 's']])).toBe(0);
      });

      it('hands out strictly increasing numbers across scopes, and the sequence covers each', async () => {
        const taken: number[] = [];
        for (const [scope, value] of [['subject', 'a'], ['client', 'b'], ['session', 'c'], ['subject', 'a']] as const) {
          taken.push(await store.revokeScope(scope, value, LONG_KEEP_MS));
          expect(await store.revocationSequence()).toBeGreaterThanOrEqual(taken.at(-1) ?? Infinity);
        }
        expect(taken[0]).toBeGreaterThan(0);
        for (let index = 1; index < taken.length; index += 1) {
          expect(taken[index]).toBeGreaterThan(taken[index - 1] ?? Infinity);
        }
      });

      it('marks a revoked scope with the number its revocation took', async () => {
        const taken = await store.revokeScope('subject', 'alice', LONG_KEEP_MS);
        expect(await store.revocationMark([['subject', 'alice']])).toBe(taken);
      });

      it('answers the highest mark among several scopes', async () => {
        await store.revokeScope('client', 'orders', LONG_KEEP_MS);
        const highest = await store.revokeScope('session', 'session-9', LONG_KEEP_MS);
        await store.revokeScope('subject', 'someone-else', LONG_KEEP_MS);
        const mark = await store.revocationMark([
          ['subject', 'alice'],
          ['client', 'orders'],
          ['session', 'session-9'],
        ]);
        expect(mark).toBe(highest);
      });

      it('marks a single token by id, apart from a subject or session of the same name', async () => {
        const taken = await store.revokeScope('token', 'shared-name', 60_000);
        expect(await store.revocationMark([['token', 'shared-name']])).toBe(taken);
        expect(await store.revocationMark([['subject', 'shared-name'], ['session', 'shared-name']])).toBe(0);
      });

      it('keeps the same value in different scopes apart', async () => {
        await store.revokeScope('subject', 'shared', LONG_KEEP_MS);
        expect(await store.revocationMark([['client', 'shared']])).toBe(0);
        expect(await store.revocationMark([['session', 'shared']])).toBe(0);
      });

      it('keeps values that differ only in braces, colons, unicode or whitespace apart', async () => {
        const values = ['', ' ', 'a', '{a}', '{a', 'a}', '}{', 'a:b', 'subject:a', 'ü', 'u\u0308', '😀', 'a\u0000b', 'x'.repeat(2000)];
        const taken = new Map<string, number>();
        for (const value of values) taken.set(value, await store.revokeScope('subject', value, LONG_KEEP_MS));
        for (const value of values) {
          expect(await store.revocationMark([['subject', value]]), `value ${JSON.stringify(value.slice(0, 20))}`).toBe(
            taken.get(value),
          );
        }
        expect(await store.revocationMark([['subject', '{}']])).toBe(0);
      });

      it('ends concurrent revocations of one scope at the highest number taken', async () => {
        const taken = await Promise.all(
          Array.from({ length: 25 }, () => store.revokeScope('subject', 'alice', LONG_KEEP_MS)),
        );
        expect(new Set(taken).size).toBe(taken.length);
        expect(await store.revocationMark([['subject', 'alice']])).toBe(Math.max(...taken));
        expect(await store.revocationSequence()).toBe(Math.max(...taken));
      });

      it('drops a mark once keepForMs has passed, without resetting the sequence', async () => {
        const taken = await store.revokeScope('session', 'short', SHORT_MS);
        await harness.passTime(2 * SHORT_MS);
        expect(await store.revocationMark([['session', 'short']])).toBe(0);
        expect(await store.revocationSequence()).toBe(taken);
      });

      it('does not let a later, shorter keepForMs cut short an earlier, longer one', async () => {
        await store.revokeScope('subject', 'alice', 3 * SHORT_MS);
        const later = await store.revokeScope('subject', 'alice', 1);
        await harness.passTime(SHORT_MS);
        expect(await store.revocationMark([['subject', 'alice']])).toBe(later);
        await harness.passTime(3 * SHORT_MS);
        expect(await store.revocationMark([['subject', 'alice']])).toBe(0);
      });

      it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])(
        'refuses keepForMs %s, which would keep a revocation for no time',
        async (keepForMs) => {
          await expect(store.revokeScope('subject', 'alice', keepForMs)).rejects.toThrow(RangeError);
          expect(await store.revocationSequence()).toBe(0);
        },
      );
    });

    describe('key ring', () => {
      /** The ring without the store's identity, which some stores carry (checked below). */
      async function readKeyRing() {
        const { storeIdentity: _identity, ...ring } = await store.readKeyRing();
        return ring;
      }

      it('reads as version 0 with no keys before any write', async () => {
        expect(await readKeyRing()).toEqual({ version: 0, keys: [] });
      });

      it('keeps one store identity across writes, so a replica keeps the ring it has loaded', async () => {
        await store.writeKeyRing(0, [storedKey('k1')]);
        const { storeIdentity } = await store.readKeyRing();
        await store.writeKeyRing(1, [storedKey('k2')]);
        expect((await store.readKeyRing()).storeIdentity).toBe(storeIdentity);
      });

      it('writes when the expected version matches, raising the version by one', async () => {
        expect(await store.writeKeyRing(0, [storedKey('k1')])).toBe(true);
        expect(await readKeyRing()).toEqual({ version: 1, keys: [storedKey('k1')] });
        const retiring = { ...storedKey('k1'), state: 'retiring' as const, retiresAt: 1_800_000_000_000 };
        expect(await store.writeKeyRing(1, [storedKey('k2'), retiring])).toBe(true);
        expect(await readKeyRing()).toEqual({ version: 2, keys: [storedKey('k2'), retiring] });
      });

      it('refuses a stale expected version and changes nothing', async () => {
        await store.writeKeyRing(0, [storedKey('k1')]);
        expect(await store.writeKeyRing(0, [storedKey('stale')])).toBe(false);
        expect(await store.writeKeyRing(5, [storedKey('future')])).toBe(false);
        expect(await readKeyRing()).toEqual({ version: 1, keys: [storedKey('k1')] });
      });

      it('lets exactly one of two concurrent writers with the same expected version win', async () => {
        await store.writeKeyRing(0, [storedKey('k1')]);
        const results = await Promise.all([
          store.writeKeyRing(1, [storedKey('from-a')]),
          store.writeKeyRing(1, [storedKey('from-b')]),
        ]);
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = results[0] ? 'from-a' : 'from-b';
        expect(await readKeyRing()).toEqual({ version: 2, keys: [storedKey(winner)] });
      });

      it('is not changed by the caller mutating the keys after writing or reading them', async () => {
        const keys = [storedKey('k1')];
        await store.writeKeyRing(0, keys);
        keys.push(storedKey('k2'));
        (await store.readKeyRing()).keys.pop();
        expect((await store.readKeyRing()).keys).toEqual([storedKey('k1')]);
      });
    });

    describe('secret fingerprint', () => {
      it('records the first fingerprint and accepts only that one afterwards', async () => {
        expect(await store.checkSecretFingerprint('fingerprint-a')).toBe(true);
        expect(await store.checkSecretFingerprint('fingerprint-a')).toBe(true);
        expect(await store.checkSecretFingerprint('fingerprint-b')).toBe(false);
        expect(await store.checkSecretFingerprint('fingerprint-a')).toBe(true);
      });

      it('records exactly one of two fingerprints presented at once', async () => {
        const [a, b] = await Promise.all([
          store.checkSecretFingerprint('fingerprint-a'),
          store.checkSecretFingerprint('fingerprint-b'),
        ]);
        expect([a, b].filter(Boolean)).toHaveLength(1);
      });
    });

    describe('clock', () => {
      it('tells the time of the clock it judges keep times by', async () => {
        const before = harness.clock.now();
        const time = await store.time();
        // The harness's clock and the store's are the same machine's here; the
        // store rounds to milliseconds.
        expect(time).toBeGreaterThanOrEqual(before - 1);
        expect(time).toBeLessThanOrEqual(harness.clock.now() + 1);
      });
    });

    if (options.withoutHolders !== undefined) {
      it(`offers no holders of a view: ${options.withoutHolders}`, () => {
        expect(store.holders).toBeUndefined();
      });
    } else {
      describe('holders of a view', () => {
        /** Follows the store's events once the store can be followed (a replica's view takes a moment to load). */
        async function follow(): Promise<{ from: number; events: StoreEvent[]; stop(): void }> {
          const events: StoreEvent[] = [];
          const deadline = performance.now() + 10_000;
          for (;;) {
            const following = store.holders!.follow((event) => events.push(event));
            if (following !== undefined) return { from: following.from, events, stop: following.stop };
            if (performance.now() > deadline) throw new Error('the store could not be followed within 10 s');
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        }

        /** The first event a follower got past `past` of them, once it has come. */
        async function nthEvent(events: StoreEvent[], index: number): Promise<StoreEvent> {
          const deadline = performance.now() + 5_000;
          while (events.length <= index) {
            if (performance.now() > deadline) throw new Error(`event ${index} did not come within 5 s (got ${JSON.stringify(events)})`);
            await new Promise((resolve) => setTimeout(resolve, 1));
          }
          return events[index]!;
        }

        function settled(promise: Promise<unknown>): () => boolean {
          let done = false;
          promise.then(() => (done = true), () => (done = true));
          return () => done;
        }

        it('tells a follower every revocation and key-ring change made after it began, in order, each with the number it took', async () => {
          const { from, events, stop } = await follow();
          const subject = await store.revokeScope('subject', 'alice', LONG_KEEP_MS);
          const client = await store.revokeScope('client', 'orders', LONG_KEEP_MS);
          await store.writeKeyRing((await store.readKeyRing()).version, [storedKey('k1')]);
          const token = await store.revokeScope('token', 'token-1', LONG_KEEP_MS);
          const key = await store.revokeScope('key', 'k1', LONG_KEEP_MS);
          await nthEvent(events, 4);
          stop();
          expect(events).toHaveLength(5);
          expect(events.filter((event) => event.kind === 'mark')).toEqual([
            { kind: 'mark', sequence: subject, scope: 'subject', value: 'alice' },
            { kind: 'mark', sequence: client, scope: 'client', value: 'orders' },
            { kind: 'mark', sequence: token, scope: 'token', value: 'token-1' },
            { kind: 'mark', sequence: key, scope: 'key', value: 'k1' },
          ]);
          const keys = events[2]!;
          expect(keys.kind).toBe('keys');
          const sequences = events.map((event) => (event.kind === 'lost' ? -1 : event.sequence));
          expect(sequences[0]).toBeGreaterThan(from);
          for (let index = 1; index < sequences.length; index++) expect(sequences[index]).toBeGreaterThan(sequences[index - 1]!);
          expect(await store.revocationSequence()).toBe(key);
        });

        it('tells nothing more once a follower stops', async () => {
          const { events, stop } = await follow();
          stop();
          await store.revokeScope('subject', 'alice', LONG_KEEP_MS);
          const { events: others } = await follow();
          await store.revokeScope('subject', 'bob', LONG_KEEP_MS);
          await nthEvent(others, 0);
          expect(events).toEqual([]);
        });

        it('grants a lease with the store\'s sequence and time at the grant', async () => {
          const taken = await store.revokeScope('subject', 'alice', LONG_KEEP_MS);
          const before = await store.time();
          const grant = await store.holders!.grant('holder-1', 0);
          expect(grant.sequence).toBe(taken);
          expect(grant.time).toBeGreaterThanOrEqual(before);
          expect(grant.time).toBeLessThanOrEqual((await store.time()) + 1);
        });

        it('holds a revocation until a holder with a live lease has acknowledged its event', async () => {
          const { from, events, stop } = await follow();
          await store.holders!.grant('holder-1', from);
          const revoking = store.revokeScope('subject', 'alice', LONG_KEEP_MS);
          const done = settled(revoking);
          const event = await nthEvent(events, 0);
          // Time enough for a store that did not wait to have returned.
          await new Promise((resolve) => setTimeout(resolve, 50));
          expect(done()).toBe(false);
          expect(event.kind === 'mark' && event.value).toBe('alice');
          expect(await store.holders!.renew('holder-1', (event as { sequence: number }).sequence)).toBe(true);
          expect(await revoking).toBe((event as { sequence: number }).sequence);
          stop();
        });

        it('holds a revocation no longer than the lease of a holder that stopped acknowledging', async () => {
          const { from, stop } = await follow();
          await store.holders!.grant('holder-1', from);
          const revoking = store.revokeScope('subject', 'alice', LONG_KEEP_MS);
          await harness.passTime(store.holders!.leaseMs + SHORT_MS);
          await expect(revoking).resolves.toBeGreaterThan(from);
          // Its lease lapsed: a late acknowledgement renews nothing.
          expect(await store.holders!.renew('holder-1', Number.MAX_SAFE_INTEGER)).toBe(false);
          stop();
        });

        it('renews no lease of a holder that has not applied a revocation made a whole lease ago, so it cannot hold revocations until they fail', async () => {
          const { from, stop } = await follow();
          await store.holders!.grant('holder-1', from);
          const revoking = store.revokeScope('subject', 'alice', LONG_KEEP_MS);
          const leaseMs = store.holders!.leaseMs;
          // Acknowledging every quarter lease, without ever applying the revocation.
          let renewals = 0;
          while (await store.holders!.renew('holder-1', from)) {
            renewals += 1;
            if (renewals > 8) break;
            await harness.passTime(leaseMs / 4);
          }
          expect(renewals).toBeGreaterThanOrEqual(2);
          expect(renewals).toBeLessThanOrEqual(6);
          await expect(revoking).resolves.toBeGreaterThan(from);
          stop();
        });

        it('renews only a live lease it granted', async () => {
          expect(await store.holders!.renew('never-granted', 0)).toBe(false);
          await store.holders!.grant('holder-1', 0);
          expect(await store.holders!.renew('holder-1', 0)).toBe(true);
          await harness.passTime(store.holders!.leaseMs + SHORT_MS);
          expect(await store.holders!.renew('holder-1', 0)).toBe(false);
          expect(await store.holders!.renew('holder-1', 0)).toBe(false);
        });

        it('lets revocations stop waiting for a released lease at once', async () => {
          const { from, stop } = await follow();
          await store.holders!.grant('holder-1', from);
          await store.holders!.release('holder-1');
          const started = performance.now();
          await store.revokeScope('subject', 'alice', LONG_KEEP_MS);
          expect(performance.now() - started).toBeLessThan(store.holders!.leaseMs);
          expect(await store.holders!.renew('holder-1', Number.MAX_SAFE_INTEGER)).toBe(false);
          stop();
        });
      });
    }

    describe('lifecycle', () => {
      it('answers ping while open', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('rejects every call with StoreUnavailableError once closed', async () => {
        await store.close();
        const calls: Array<[string, () => Promise<unknown>]> = [
          ['ping', () => store.ping()],
          ['revocationSequence', () => store.revocationSequence()],
          ['putToken', () => store.putToken(record())],
          ['getToken', () => store.getToken('token-1')],
          ['revokeScope', () => store.revokeScope('subject', 'alice', LONG_KEEP_MS)],
          ['revocationMark', () => store.revocationMark([['subject', 'alice']])],
          ['readKeyRing', () => store.readKeyRing()],
          ['writeKeyRing', () => store.writeKeyRing(0, [])],
          ['checkSecretFingerprint', () => store.checkSecretFingerprint('f')],
          ['time', () => store.time()],
        ];
        for (const [method, invoke] of calls) {
          await expect(invoke(), method).rejects.toBeInstanceOf(StoreUnavailableError);
        }
        await expect(store.close()).resolves.toBeUndefined();
      });
    });
  });
}
