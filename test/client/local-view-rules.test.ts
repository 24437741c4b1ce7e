// The local view's own rules, against a scripted Tally (an in-memory Connect
// router), so each can be driven where a real server would not go on cue:
// the lease runs out while the stream still flows, an answer in flight
// crosses an event, the watch must catch up first, the lease is lost, the
// store's clock is ahead, a revocation is withheld.

import { create } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromMs } from '@bufbuild/protobuf/wkt';
import { createClient, createRouterTransport } from '@connectrpc/connect';
import { createWritableIterable } from '@connectrpc/connect/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { startLocalView, type StartedLocalView } from '../../src/client/local-view.js';
import {
  IntrospectResponseSchema,
  TokenFormat,
  TokenService,
  type IntrospectResponse,
  type WatchRevocationsResponse,
} from '../../src/gen/tally/v1/token_service_pb.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { FollowRevocationsResponseSchema, WatchRevocationsResponseSchema } from '../../src/gen/tally/v1/token_service_pb.js';
import { eventually } from '../support/eventually.js';

type Message = MessageInitShape<typeof WatchRevocationsResponseSchema>;

const LEASE_MS = 400;

/** What the scripted Tally does; each test changes what it needs. */
interface Script {
  started: { sequence: number; catchUpTo: number; storeTimeMs?: number };
  /** Messages after `started`, pushed by the test. */
  push(message: Message): void;
  /** The answer to an Introspect, decided by the test (default: active, reflecting `reflects`). */
  introspect: (token: string) => Promise<MessageInitShape<typeof IntrospectResponseSchema>>;
  /** Whether an acknowledgement renews the lease; a pending promise leaves it (and those after it) unanswered. */
  acknowledge: () => Promise<boolean>;
  /** Progress every this often (as Tally does every quarter lease), 0 for none. */
  progressMs: number;
  acknowledged: number[];
  watches: number;
}

function activeAnswer(token: string, reflects: number, overrides: Partial<MessageInitShape<typeof IntrospectResponseSchema>> = {}) {
  return {
    active: true,
    tokenId: `id-${token}`,
    format: TokenFormat.OPAQUE,
    subject: `subject-${token}`,
    clientId: 'web',
    sessionId: `session-${token}`,
    audience: ['orders'],
    scopes: ['read'],
    issuedAt: timestampFromMs(Date.now()),
    expiresAt: timestampFromMs(Date.now() + 3_600_000),
    issuer: 'tally',
    revocationSequence: BigInt(reflects),
    ...overrides,
  };
}

function scriptedTally(): { script: Script; view: (options?: Parameters<typeof startLocalView>[1]) => StartedLocalView } {
  let sequence = 0;
  const waiting: Array<(message: Message) => void> = [];
  const queued: Message[] = [];
  const script: Script = {
    started: { sequence: 10, catchUpTo: 10 },
    push(message) {
      sequence = Math.max(sequence, Number(message.sequence ?? 0));
      const next = waiting.shift();
      if (next !== undefined) next(message);
      else queued.push(message);
    },
    introspect: async (token) => activeAnswer(token, sequence),
    acknowledge: async () => true,
    progressMs: LEASE_MS / 4,
    acknowledged: [],
    watches: 0,
  };
  const transport = createRouterTransport(({ service }) => {
    service(TokenService, {
      async *followRevocations(requests, context) {
        script.watches += 1;
        sequence = script.started.sequence;
        const out = createWritableIterable<MessageInitShape<typeof FollowRevocationsResponseSchema>>();
        const watch = (message: Message) => out.write({ message: { case: 'watch', value: message } }).catch(() => {});
        void watch({
          sequence: BigInt(script.started.sequence),
          event: {
            case: 'started',
            value: {
              watchId: `watch-${script.watches}`,
              lease: durationFromMs(LEASE_MS),
              catchUpTo: BigInt(script.started.catchUpTo),
              storeTime: timestampFromMs(script.started.storeTimeMs ?? Date.now()),
            },
          },
        });
        // Acknowledgements, answered in order as the script says.
        void (async () => {
          for await (const request of requests) {
            if (request.release) break;
            script.acknowledged.push(Number(request.sequence));
            const held = await script.acknowledge();
            await out.write({ message: { case: 'renewed', value: { held } } }).catch(() => {});
          }
          out.close();
        })().catch(() => out.close());
        // Events the test pushes, and progress while nothing happens.
        void (async () => {
          while (!context.signal.aborted) {
            const message =
              queued.shift() ??
              (await new Promise<Message | undefined>((resolve) => {
                waiting.push(resolve);
                if (script.progressMs > 0) setTimeout(() => resolve(undefined), script.progressMs);
              }));
            await watch(message ?? { sequence: BigInt(sequence) });
          }
        })();
        yield* out;
      },
      introspect: (request) => script.introspect(request.token),
    });
  });
  const client = createClient(TokenService, transport);
  return { script, view: (options) => startLocalView(client, options) };
}

describe('the local view\'s rules', () => {
  const views: StartedLocalView[] = [];
  afterEach(async () => {
    await Promise.all(views.splice(0).map((view) => view.close()));
  });

  function open(tally: ReturnType<typeof scriptedTally>, options?: Parameters<typeof startLocalView>[1]): StartedLocalView {
    const view = tally.view(options);
    views.push(view);
    return view;
  }

  it('stops answering from its cache when its lease runs out, though the stream still flows, once acknowledgements go unanswered', async () => {
    const tally = scriptedTally();
    const view = open(tally);
    await eventually(async () => expect(view.fresh()).toBe(true), 2_000);
    await view.introspect({ token: 'a' });
    expect((await view.introspect({ token: 'a' })).active).toBe(true);
    expect(view.stats().hits).toBe(1);
    // From now on Tally renews nothing: acknowledgements hang, progress keeps coming.
    tally.script.acknowledge = () => new Promise(() => {});
    const stoppedRenewing = performance.now();
    await eventually(async () => expect(view.fresh()).toBe(false), 2_000, 5);
    const trustedFor = performance.now() - stoppedRenewing;
    // The last renewal was sent at most a quarter lease before; the lease, less its margin, ran from there.
    expect(trustedFor).toBeLessThan(LEASE_MS + 100);
    const misses = view.stats().misses;
    await view.introspect({ token: 'a' });
    expect(view.stats().misses).toBe(misses + 1);
  });

  it('uses, but does not keep, an answer that reflects less than an event it applied meanwhile', async () => {
    const tally = scriptedTally();
    const view = open(tally);
    await eventually(async () => expect(view.fresh()).toBe(true), 2_000);
    let answer!: (reply: MessageInitShape<typeof IntrospectResponseSchema>) => void;
    tally.script.introspect = () => new Promise((resolve) => (answer = resolve));
    const inFlight = view.introspect({ token: 'b' });
    await eventually(async () => expect(answer).toBeDefined(), 1_000);
    // A revocation of another subject is applied while the answer is on its way, computed before it.
    tally.script.push({ sequence: 11n, event: { case: 'revoked', value: { scope: { case: 'subject', value: 'someone-else' } } } });
    await eventually(async () => expect(tally.script.acknowledged).toContain(11), 1_000);
    answer(activeAnswer('b', 10));
    expect((await inFlight).active).toBe(true);
    expect(view.size).toBe(0);
    // One that reflects the event is kept.
    tally.script.introspect = async (token) => activeAnswer(token, 11);
    await view.introspect({ token: 'b' });
    expect(view.size).toBe(1);
  });

  it('answers from its cache only once it has applied events up to where the lease was granted', async () => {
    const tally = scriptedTally();
    tally.script.started = { sequence: 10, catchUpTo: 12 };
    tally.script.introspect = async (token) => activeAnswer(token, 12);
    const view = open(tally);
    await eventually(async () => expect(tally.script.acknowledged.length).toBeGreaterThan(0), 2_000);
    await view.introspect({ token: 'c' });
    await view.introspect({ token: 'c' });
    expect(view.fresh()).toBe(false);
    expect(view.stats().hits).toBe(0);
    tally.script.push({ sequence: 12n, event: { case: 'revoked', value: { scope: { case: 'tokenId', value: 'id-elsewhere' } } } });
    await eventually(async () => expect(view.fresh()).toBe(true), 2_000);
    expect((await view.introspect({ token: 'c' })).active).toBe(true);
    expect(view.stats().hits).toBe(1);
  });

  it('drops what each event covers: a token, a subject, a client, a session, every JWT on a key event, everything when withheld', async () => {
    const tally = scriptedTally();
    const view = open(tally);
    await eventually(async () => expect(view.fresh()).toBe(true), 2_000);
    let sequence = 10;
    const cache = async (token: string, overrides: Partial<MessageInitShape<typeof IntrospectResponseSchema>> = {}) => {
      tally.script.introspect = async () => activeAnswer(token, sequence, overrides);
      await view.introspect({ token });
    };
    const cached = async (token: string) => {
      const hits = view.stats().hits;
      await view.introspect({ token });
      return view.stats().hits === hits + 1;
    };
    const apply = async (event: WatchRevocationsResponse['event'] | undefined) => {
      sequence += 1;
      tally.script.push({ sequence: BigInt(sequence), event: event as Message['event'] });
      await eventually(async () => expect(tally.script.acknowledged).toContain(sequence), 1_000);
    };
    for (const token of ['t1', 't2', 't3', 't4', 't5']) await cache(token);
    await cache('j1', { format: TokenFormat.JWT });
    await apply({ case: 'revoked', value: { scope: { case: 'tokenId', value: 'id-t1' } } } as WatchRevocationsResponse['event']);
    await apply({ case: 'revoked', value: { scope: { case: 'subject', value: 'subject-t2' } } } as WatchRevocationsResponse['event']);
    await apply({ case: 'revoked', value: { scope: { case: 'sessionId', value: 'session-t3' } } } as WatchRevocationsResponse['event']);
    expect(view.size).toBe(3);
    await apply({ case: 'keysChanged', value: {} } as WatchRevocationsResponse['event']);
    expect(view.size).toBe(2);
    expect(await cached('t4')).toBe(true);
    await apply({ case: 'revoked', value: { scope: { case: 'clientId', value: 'web' } } } as WatchRevocationsResponse['event']);
    expect(view.size).toBe(0);
    for (const token of ['t6', 't7']) await cache(token);
    await apply({ case: 'revoked', value: {} } as WatchRevocationsResponse['event']);
    expect(view.size).toBe(0);
  });

  it('drops its cache and watches again when Tally no longer holds its lease', async () => {
    const tally = scriptedTally();
    const changes: string[] = [];
    const view = open(tally, { initialBackoffMs: 1, onChange: (change) => changes.push(change.watching ? 'watching' : change.reason) });
    await eventually(async () => expect(view.fresh()).toBe(true), 2_000);
    await view.introspect({ token: 'd' });
    expect(view.size).toBe(1);
    tally.script.acknowledge = async () => false;
    await eventually(async () => expect(tally.script.watches).toBeGreaterThanOrEqual(2), 2_000);
    expect(changes.slice(0, 2)).toEqual(['watching', expect.stringContaining('no longer held the lease')]);
    tally.script.acknowledge = async () => true;
    await eventually(async () => expect(view.fresh()).toBe(true), 2_000);
    expect(view.size).toBe(0);
  });

  it('drops its cache and watches again when the stream falls silent', async () => {
    const tally = scriptedTally();
    const reasons: string[] = [];
    const view = open(tally, { initialBackoffMs: 1, onChange: (change) => !change.watching && reasons.push(change.reason) });
    await eventually(async () => expect(view.fresh()).toBe(true), 2_000);
    await view.introspect({ token: 'e' });
    tally.script.progressMs = 0;
    // Dropped, not merely untrusted until its lease runs out, and watched again.
    await eventually(async () => expect(reasons).toContain('the revocation stream fell silent'), 2 * LEASE_MS);
    expect(view.size).toBe(0);
    await eventually(async () => expect(tally.script.watches).toBeGreaterThanOrEqual(2), 2 * LEASE_MS);
  });

  it('judges expiry on the store\'s clock: an answer expired there is not answered from the cache', async () => {
    const tally = scriptedTally();
    // The store's clock is an hour ahead of this process's.
    tally.script.started = { sequence: 10, catchUpTo: 10, storeTimeMs: Date.now() + 3_600_000 };
    tally.script.introspect = async (token) => activeAnswer(token, 10, { expiresAt: timestampFromMs(Date.now() + 1_800_000) });
    const view = open(tally);
    await eventually(async () => expect(view.fresh()).toBe(true), 2_000);
    await view.introspect({ token: 'f' });
    await view.introspect({ token: 'f' });
    expect(view.stats()).toEqual({ hits: 0, misses: 2 });
  });

  it('hands every hit the same frozen answer', async () => {
    const tally = scriptedTally();
    const view = open(tally);
    await eventually(async () => expect(view.fresh()).toBe(true), 2_000);
    await view.introspect({ token: 'g' });
    const hit: IntrospectResponse = await view.introspect({ token: 'g' });
    expect(() => hit.scopes.push('admin')).toThrow(TypeError);
    expect((await view.introspect({ token: 'g', requiredScopes: ['admin'] })).active).toBe(false);
    expect(create(IntrospectResponseSchema, hit).scopes).toEqual(['read']);
  });
});
