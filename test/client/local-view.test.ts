// tally/client's local view against a real Tally process on the memory store
// (no Redis): answers from the cache while watching, the same verdicts as
// Tally for audiences and scopes, exact after Revoke, audience limits on what
// a caller hears, the stream on the HTTP port (Connect), and the permission.
// Three replicas on Redis, killed, frozen and cut-off clients, and a store
// reset: test/e2e/client-view.test.ts.

import { createClient } from '@connectrpc/connect';
import { createWritableIterable } from '@connectrpc/connect/protocol';
import { createConnectTransport } from '@connectrpc/connect-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Code, ConnectError, createTallyClient, TokenFormat, TokenService, type TallyClientWithLocalView, type WatchRevocationsResponse } from '../../src/client/index.js';
import { eventually } from '../support/eventually.js';
import { writeCallersFile } from '../support/keyed-callers.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const CLIENT_LEASE_MS = 600;

describe('the local view of tally/client, on the memory store', () => {
  const callers = writeCallersFile([
    { name: 'operator', permissions: ['issue', 'introspect', 'revoke', 'keys'] },
    { name: 'orders', permissions: ['introspect'], audiences: ['orders'] },
    { name: 'billing-jobs', permissions: ['revoke'] },
  ]);
  let tally: TallyProcess;
  const opened: TallyClientWithLocalView[] = [];

  beforeAll(async () => {
    tally = await startTally({ env: { TALLY_CALLERS_FILE: callers.path, TALLY_CLIENT_LEASE_MS: String(CLIENT_LEASE_MS) } });
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((client) => client.localView.close()));
  });
  afterAll(async () => {
    await tally?.stop();
  });

  const operator = () => createTallyClient({ baseUrl: `http://${tally.grpcAddress}`, apiKey: callers.keys.operator });

  async function viewClient(caller = 'operator'): Promise<TallyClientWithLocalView> {
    const client = createTallyClient({ baseUrl: `http://${tally.grpcAddress}`, apiKey: callers.keys[caller], localView: { maxEntries: 100 } });
    opened.push(client);
    await eventually(async () => expect(client.localView.fresh()).toBe(true), 5_000);
    return client;
  }

  it('answers a token it has seen from its cache, with the answer Tally gave', async () => {
    const client = await viewClient();
    const { token } = await operator().issue({ subject: 'alice', audience: ['orders'], scopes: ['read'], sessionId: 's-1' });
    const asked = await client.introspect({ token });
    expect(asked.active).toBe(true);
    expect(asked.revocationSequence).toBeGreaterThanOrEqual(0n);
    const before = client.localView.stats();
    const answered = await client.introspect({ token });
    expect(client.localView.stats()).toEqual({ hits: before.hits + 1, misses: before.misses });
    expect(answered).toEqual(asked);
    expect(Object.isFrozen(answered)).toBe(true);
  });

  it.each([
    ['an audience the token names', { audience: 'orders' }, true],
    ['an audience it does not name', { audience: 'billing' }, false],
    ['scopes it carries', { requiredScopes: ['read'] }, true],
    ['a scope it lacks', { requiredScopes: ['read', 'write'] }, false],
  ])('decides %s from the cache as Tally does', async (_case, demand, active) => {
    const client = await viewClient();
    const { token } = await operator().issue({ subject: 'alice', audience: ['orders'], scopes: ['read'] });
    await client.introspect({ token });
    const fromTally = await operator().introspect({ token, ...demand });
    const hits = client.localView.stats().hits;
    const fromView = await client.introspect({ token, ...demand });
    expect(client.localView.stats().hits).toBe(hits + 1);
    expect(fromView.active).toBe(active);
    expect(fromTally.active).toBe(active);
    // Inactive: nothing but the verdict, as from Tally.
    if (!active) expect(fromView).toEqual(fromTally);
  });

  it.each([
    ['its token id', (issued: { tokenId: string }) => ({ case: 'tokenId' as const, value: issued.tokenId })],
    ['its subject', () => ({ case: 'subject' as const, value: 'carol' })],
    ['its client', () => ({ case: 'clientId' as const, value: 'web' })],
    ['its session', () => ({ case: 'sessionId' as const, value: 'session-c' })],
  ])('answers a cached token inactive once Revoke of %s has returned', async (_case, target) => {
    const client = await viewClient();
    const other = await operator().issue({ subject: 'dave', clientId: 'mobile', sessionId: 'session-d' });
    const issued = await operator().issue({ subject: 'carol', clientId: 'web', sessionId: 'session-c', format: TokenFormat.JWT });
    for (const token of [issued.token, other.token]) await client.introspect({ token });
    expect(client.localView.size).toBe(2);
    await operator().revoke({ target: target(issued) });
    expect((await client.introspect({ token: issued.token })).active).toBe(false);
    // Only what the revocation covered left the cache.
    const hits = client.localView.stats().hits;
    expect((await client.introspect({ token: other.token })).active).toBe(true);
    expect(client.localView.stats().hits).toBe(hits + 1);
  });

  it('drops cached JWTs when a key is revoked, and keeps opaque tokens', async () => {
    const client = await viewClient();
    const jwt = await operator().issue({ subject: 'erin', format: TokenFormat.JWT });
    const opaque = await operator().issue({ subject: 'erin' });
    await client.introspect({ token: jwt.token });
    await client.introspect({ token: opaque.token });
    const { keys } = await operator().listKeys({});
    await operator().revokeKey({ kid: keys.find((key) => key.isDefault)!.kid });
    expect((await client.introspect({ token: jwt.token })).active).toBe(false);
    const hits = client.localView.stats().hits;
    expect((await client.introspect({ token: opaque.token })).active).toBe(true);
    expect(client.localView.stats().hits).toBe(hits + 1);
  });

  it('never caches an inactive answer, and keeps at most maxEntries answers', async () => {
    const client = await viewClient();
    const misses = client.localView.stats().misses;
    for (let i = 0; i < 2; i++) expect((await client.introspect({ token: 'tly_unknown' })).active).toBe(false);
    expect(client.localView.stats().misses).toBe(misses + 2);
    const tokens = await Promise.all(Array.from({ length: 120 }, (_, i) => operator().issue({ subject: `bulk-${i}` })));
    for (const { token } of tokens) await client.introspect({ token });
    expect(client.localView.size).toBe(100);
  });

  it('once closed, releases its lease at once and asks Tally every time', async () => {
    const client = await viewClient();
    const { token } = await operator().issue({ subject: 'frank' });
    await client.introspect({ token });
    await client.localView.close();
    expect(client.localView.fresh()).toBe(false);
    expect(client.localView.size).toBe(0);
    // Its lease gone, a revocation does not wait for it.
    const started = performance.now();
    await operator().revoke({ target: { case: 'subject', value: 'frank' } });
    expect(performance.now() - started).toBeLessThan(CLIENT_LEASE_MS / 2);
    const misses = client.localView.stats().misses;
    expect((await client.introspect({ token })).active).toBe(false);
    expect(client.localView.stats().misses).toBe(misses + 1);
  });

  it('a caller limited to audiences hears of its own tokens only, and of broader revocations without their names', async () => {
    const stream = createClient(TokenService, createConnectTransport({ baseUrl: tally.httpUrl, httpVersion: '1.1' }));
    const abort = new AbortController();
    const messages: WatchRevocationsResponse[] = [];
    const reading = (async () => {
      try {
        for await (const message of stream.watchRevocations({}, { signal: abort.signal, headers: { authorization: `Bearer ${callers.keys.orders}` } })) {
          messages.push(message);
          if (message.event.case === 'started') {
            await stream.acknowledgeRevocations({ watchId: message.event.value.watchId, sequence: message.sequence }, { headers: { authorization: `Bearer ${callers.keys.orders}` } });
          }
        }
      } catch (error) {
        if (!abort.signal.aborted) throw error;
      }
    })();
    await eventually(async () => expect(messages[0]?.event.case).toBe('started'), 5_000);
    const mine = await operator().issue({ subject: 'grace', audience: ['orders'] });
    const theirs = await operator().issue({ subject: 'heidi', audience: ['billing'] });
    // The lease lapses unacknowledged after the first message: these do not wait long.
    await operator().revoke({ target: { case: 'tokenId', value: theirs.tokenId } });
    await operator().revoke({ target: { case: 'tokenId', value: mine.tokenId } });
    await operator().revoke({ target: { case: 'subject', value: 'heidi' } });
    await eventually(async () => expect(messages.filter((message) => message.event.case === 'revoked')).toHaveLength(2), 5_000);
    abort.abort();
    await reading;
    const events = messages.filter((message) => message.event.case !== undefined).map((message) => message.event);
    expect(events.map((event) => event.case)).toEqual(['started', 'revoked', 'revoked']);
    expect(events[1]!.value).toMatchObject({ scope: { case: 'tokenId', value: mine.tokenId } });
    // The subject revocation came, without the subject.
    expect(events[2]!.value).toMatchObject({ scope: { case: undefined } });
    expect(JSON.stringify(messages, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value))).not.toContain('heidi');
    expect(JSON.stringify(messages, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value))).not.toContain(theirs.tokenId);
    // Every event has its number, in order, none skipped: progress stands in for the one withheld.
    const sequences = messages.map((message) => Number(message.sequence));
    for (let i = 1; i < sequences.length; i++) expect(sequences[i]).toBeGreaterThanOrEqual(sequences[i - 1]!);
  });

  it('serves the stream and acknowledgements on the HTTP port over the Connect protocol', async () => {
    const connect = createClient(TokenService, createConnectTransport({ baseUrl: tally.httpUrl, httpVersion: '1.1' }));
    const headers = { authorization: `Bearer ${callers.keys.operator}` };
    const abort = new AbortController();
    const iterator = connect.watchRevocations({}, { signal: abort.signal, headers })[Symbol.asyncIterator]();
    const first = (await iterator.next()).value as WatchRevocationsResponse;
    expect(first.event.case).toBe('started');
    const started = first.event.case === 'started' ? first.event.value : undefined;
    expect((await connect.acknowledgeRevocations({ watchId: started!.watchId, sequence: first.sequence }, { headers })).held).toBe(true);
    const { tokenId } = await operator().issue({ subject: 'ivan' });
    const revoking = operator().revoke({ target: { case: 'tokenId', value: tokenId } });
    let event: WatchRevocationsResponse;
    do event = (await iterator.next()).value as WatchRevocationsResponse;
    while (event.event.case === undefined);
    expect(event.event.case === 'revoked' && event.event.value.scope).toEqual({ case: 'tokenId', value: tokenId });
    // The revocation waits for this holder until it acknowledges.
    expect((await connect.acknowledgeRevocations({ watchId: started!.watchId, sequence: event.sequence }, { headers })).held).toBe(true);
    await revoking;
    abort.abort();
    await iterator.return?.();
  });

  it('refuses a caller without the introspect permission, on both ports', async () => {
    const grpc = createTallyClient({ baseUrl: `http://${tally.grpcAddress}`, apiKey: callers.keys['billing-jobs'] });
    const connect = createClient(TokenService, createConnectTransport({ baseUrl: tally.httpUrl, httpVersion: '1.1' }));
    const streams = [
      grpc.watchRevocations({}),
      grpc.followRevocations(createWritableIterable<{ sequence: bigint }>()),
      connect.watchRevocations({}, { headers: { authorization: `Bearer ${callers.keys['billing-jobs']}` } }),
    ];
    for (const stream of streams) {
      const error = await (async () => {
        for await (const _message of stream) return undefined;
        return undefined;
      })().catch((thrown: unknown) => ConnectError.from(thrown));
      expect(error?.code).toBe(Code.PermissionDenied);
    }
    const refused = ConnectError.from(await grpc.acknowledgeRevocations({ watchId: 'x', sequence: 1n }).catch((thrown: unknown) => thrown));
    expect(refused.code).toBe(Code.PermissionDenied);
  });

  it('does not serve FollowRevocations on the HTTP port, whose HTTP/1.1 cannot carry it', async () => {
    const connect = createClient(TokenService, createConnectTransport({ baseUrl: tally.httpUrl, httpVersion: '1.1' }));
    const response = await fetch(`${tally.httpUrl}/tally.v1.TokenService/FollowRevocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/connect+json', authorization: `Bearer ${callers.keys.operator}` },
      body: new Uint8Array([0, 0, 0, 0, 2, 123, 125]),
    });
    expect(response.status).toBe(404);
    // The other two are there.
    expect((await connect.acknowledgeRevocations({ watchId: 'none', sequence: 1n }, { headers: { authorization: `Bearer ${callers.keys.operator}` } })).held).toBe(false);
  });

  it('renews no lease for another caller, or for an unknown watch', async () => {
    const viewer = createClient(TokenService, createConnectTransport({ baseUrl: tally.httpUrl, httpVersion: '1.1' }));
    const abort = new AbortController();
    const iterator = viewer.watchRevocations({}, { signal: abort.signal, headers: { authorization: `Bearer ${callers.keys.operator}` } })[Symbol.asyncIterator]();
    const first = (await iterator.next()).value as WatchRevocationsResponse;
    const watchId = first.event.case === 'started' ? first.event.value.watchId : '';
    const asOrders = { headers: { authorization: `Bearer ${callers.keys.orders}` } };
    expect((await viewer.acknowledgeRevocations({ watchId, sequence: first.sequence }, asOrders)).held).toBe(false);
    expect((await viewer.acknowledgeRevocations({ watchId: 'unknown-watch', sequence: 1n }, asOrders)).held).toBe(false);
    abort.abort();
    await iterator.return?.();
  });
});

describe('a Tally that drains under a watching client', () => {
  it('ends the watch, so the process stops at once and cleanly, and the client stops answering from its cache', async () => {
    const tally = await startTally({ env: { TALLY_SHUTDOWN_TIMEOUT: '10s' } });
    const client = createTallyClient({ baseUrl: `http://${tally.grpcAddress}`, localView: { initialBackoffMs: 5_000 } });
    try {
      await eventually(async () => expect(client.localView.fresh()).toBe(true), 5_000);
      const started = performance.now();
      const { code } = await tally.stop();
      expect(code).toBe(0);
      // Not held open by the stream until the shutdown timeout.
      expect(performance.now() - started).toBeLessThan(5_000);
      await eventually(async () => expect(client.localView.fresh()).toBe(false), 1_000);
    } finally {
      await client.localView.close();
      await tally.stop();
    }
  });
});
