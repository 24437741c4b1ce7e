// The revocation contract under contention, on a real Redis shared by two
// replicas whose clocks disagree by ten minutes: once Revoke has returned, no
// token it covers is active; a token whose Issue began after it returned is
// unaffected. Order is judged by this test process's monotonic clock, which
// sees every call begin and end; the replicas' clocks take no part.
import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Clock, Store } from '../../src/core/ports.js';
import { deriveSecrets } from '../../src/core/secrets.js';
import { createTokenService, type TokenService } from '../../src/core/token-service.js';
import type { RevocationScope, TokenFormat } from '../../src/core/types.js';
import { createRedisStore } from '../../src/store/redis/redis-store.js';
import { testRedisUrl } from '../support/redis-server.js';

const GROUPS = 24;
const ISSUES_PER_GROUP = 40;
const REVOKES_PER_GROUP = 4;
const HOUR = 3_600_000;

interface Span {
  begin: number;
  end: number;
}
interface Issued extends Span {
  token: string;
  group: number;
}

const stores: Store[] = [];
const services: TokenService[] = [];
afterAll(async () => {
  await Promise.all(services.map((service) => service.stop()));
  await Promise.all(stores.map((store) => store.close()));
});

async function startReplicas(): Promise<TokenService[]> {
  const url = await testRedisUrl();
  const keyPrefix = `race-${randomUUID()}:`;
  const secrets = deriveSecrets(new Uint8Array(randomBytes(32)));
  const replicas: TokenService[] = [];
  for (const offsetMs of [+5 * 60_000, -5 * 60_000]) {
    const clock: Clock = { now: () => Date.now() + offsetMs };
    const store = createRedisStore({ url, keyPrefix, clock });
    const service = createTokenService({
      store, clock, secrets,
      issuer: 'https://tally.test', defaultTtlMs: HOUR, maxTtlMs: 2 * HOUR, clockSkewMs: 60_000,
      keyAlgorithm: 'ES256', keyRefreshMs: 1000,
    });
    stores.push(store);
    services.push(service);
    await service.start();
    replicas.push(service);
  }
  return replicas;
}

const scopeOf = (group: number): RevocationScope => (['subject', 'client', 'session'] as const)[group % 3]!;

async function timed<T>(work: () => Promise<T>): Promise<T & Span> {
  const begin = performance.now();
  const value = await work();
  return { ...value, begin, end: performance.now() };
}

describe('revocation racing issue on two replicas with disagreeing clocks', () => {
  it('covers every token issued before the revoke began and spares every token issued after it returned', async () => {
    const replicas = await startReplicas();
    const pick = () => replicas[Math.floor(Math.random() * replicas.length)]!;
    const issued: Issued[] = [];
    const revokes = new Map<number, Span[]>();

    await Promise.all(
      Array.from({ length: GROUPS }, async (_, group) => {
        const operations: Array<() => Promise<void>> = [];
        for (let i = 0; i < ISSUES_PER_GROUP; i++) {
          const format: TokenFormat = i % 2 === 0 ? 'opaque' : 'jwt';
          operations.push(async () => {
            const result = await timed(() =>
              pick().issue({ subject: `user-${group}`, clientId: `client-${group}`, sessionId: `session-${group}`, format }),
            );
            issued.push({ token: result.token, group, begin: result.begin, end: result.end });
          });
        }
        for (let i = 0; i < REVOKES_PER_GROUP; i++) {
          operations.splice(Math.floor(((i + 1) * operations.length) / (REVOKES_PER_GROUP + 1)), 0, async () => {
            const span = await timed(async () => {
              await pick().revoke({ kind: scopeOf(group), value: `${scopeOf(group) === 'subject' ? 'user' : scopeOf(group)}-${group}` });
              return {};
            });
            revokes.set(group, [...(revokes.get(group) ?? []), span]);
          });
        }
        // Several lanes per group, so issues and revokes of one group overlap.
        const lanes = 4;
        await Promise.all(
          Array.from({ length: lanes }, async (_, lane) => {
            for (let i = lane; i < operations.length; i += lanes) await operations[i]!();
          }),
        );
      }),
    );

    let mustBeInactive = 0;
    let mustBeActive = 0;
    let overlapping = 0;
    const violations: string[] = [];
    for (const token of issued) {
      const spans = revokes.get(token.group) ?? [];
      const coveredByLaterRevoke = spans.some((revoke) => token.end < revoke.begin);
      const issuedAfterEveryRevoke = spans.every((revoke) => revoke.end < token.begin);
      const { active } = await pick().introspect({ token: token.token });
      if (coveredByLaterRevoke) {
        mustBeInactive++;
        if (active) violations.push(`group ${token.group}: active although issued before a revoke began`);
      } else if (issuedAfterEveryRevoke) {
        mustBeActive++;
        if (!active) violations.push(`group ${token.group}: inactive although issued after every revoke returned`);
      } else {
        overlapping++;
      }
    }
    expect(violations).toEqual([]);
    expect(issued).toHaveLength(GROUPS * ISSUES_PER_GROUP);
    // The race must exercise both rules, or it proves nothing.
    expect(mustBeInactive).toBeGreaterThan(GROUPS * 5);
    expect(mustBeActive).toBeGreaterThan(GROUPS);
    console.info(`revocation race: ${issued.length} tokens, ${mustBeInactive} covered, ${mustBeActive} spared, ${overlapping} overlapping`);
  });
});
