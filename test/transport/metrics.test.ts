// GET /metrics on the real process: the families are there, and the counters
// move with calls on both ports, refusals included. The store decorator is
// also checked on its own against a store that fails on demand, and a burst of
// calls against the real token service must scrape as exactly that many, with
// scrapes taken while it runs.

import { Code, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authorization } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { deriveSecrets } from '../../src/core/secrets.js';
import { createTokenService } from '../../src/core/token-service.js';
import { createMemoryStore } from '../../src/store/index.js';
import { instrumentStore } from '../../src/store/instrumented-store.js';
import type { CallRecord } from '../../src/transport/call/call-log.js';
import { createMetrics } from '../../src/transport/telemetry/metrics.js';
import { writeCallersFile } from '../support/keyed-callers.js';
import { createControllableStore } from '../support/controllable-store.js';
import { createGrpcTestClient, grpcStatusOf, type GrpcTestClient } from '../support/grpc-client.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

/** The value of one sample, 0 when the series does not exist yet. */
function sample(exposition: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((pair) => line.includes(pair))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

describe('GET /metrics', () => {
  const callers = writeCallersFile([
    { name: 'admin', permissions: ['issue', 'introspect', 'revoke', 'keys', 'ext_authz', 'metrics'] },
    { name: 'reader', permissions: ['introspect'] },
    { name: 'scraper', permissions: ['metrics'] },
  ]);
  const admin = { authorization: `Bearer ${callers.keys.admin}` };
  const scraper = { authorization: `Bearer ${callers.keys.scraper}` };
  let tally: TallyProcess;
  let grpc: GrpcTestClient;
  const scrape = async (headers: Record<string, string> = scraper) => {
    const response = await fetch(`${tally.httpUrl}/metrics`, { headers });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return response.text();
  };

  beforeAll(async () => {
    tally = await startTally({ env: { TALLY_CALLERS_FILE: callers.path } });
    grpc = createGrpcTestClient(tally.grpcAddress);
  });
  afterAll(async () => {
    grpc?.close();
    await tally?.stop();
  });

  it('has every family: calls, latency, introspection outcomes, store, key ages, process', async () => {
    const text = await scrape();
    for (const family of [
      'tally_calls_total',
      'tally_call_duration_seconds',
      'tally_introspections_total',
      'tally_store_operation_duration_seconds',
      'tally_store_errors_total',
      'tally_signing_key_age_seconds',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text, family).toContain(`# TYPE ${family} `);
    }
    expect(sample(text, 'tally_signing_key_age_seconds', { state: 'active' })).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/tally_signing_key_age_seconds\{kid="[\w-]+",state="active"\}/);
    expect(sample(text, 'tally_store_operation_duration_seconds_count', { operation: 'readKeyRing', outcome: 'ok' })).toBeGreaterThan(0);
  });

  it('counts calls on both ports by method and code, refusals included, and introspection outcomes by reason', async () => {
    const before = await scrape();
    const { token } = await grpc.unary(TokenService.method.issue, { subject: 'metrics-user' }, { metadata: admin });
    await grpc.unary(TokenService.method.introspect, { token }, { metadata: admin });
    const connect = createClient(TokenService, createConnectTransport({ baseUrl: tally.httpUrl, httpVersion: '1.1', interceptors: [(next) => (request) => {
      request.header.set('authorization', admin.authorization);
      return next(request);
    }] }));
    await connect.introspect({ token: 'tly_unknown' });
    const refused = await grpcStatusOf(grpc.unary(TokenService.method.listKeys, {}, { metadata: { authorization: 'Bearer wrong' } }));
    expect(refused.code).toBe(16);
    await fetch(`${tally.httpUrl}/oauth2/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${token}` });
    await grpc.unary(Authorization.method.check, { attributes: { request: { http: { headers: { authorization: `Bearer ${token}` } } } } }, { metadata: admin });
    // A made-up path must not become a series of its own.
    await fetch(`${tally.httpUrl}/tally.v1.TokenService/${token}`, { method: 'POST' });

    const after = await scrape();
    const moved = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
    expect(moved('tally_calls_total', { method: 'tally.v1.TokenService/Issue', protocol: 'grpc', code: 'ok' })).toBe(1);
    expect(moved('tally_calls_total', { method: 'tally.v1.TokenService/Introspect', protocol: 'grpc', code: 'ok' })).toBe(1);
    expect(moved('tally_calls_total', { method: 'tally.v1.TokenService/Introspect', protocol: 'connect', code: 'ok' })).toBe(1);
    expect(moved('tally_calls_total', { method: 'tally.v1.TokenService/ListKeys', protocol: 'grpc', code: 'unauthenticated' })).toBe(1);
    expect(moved('tally_calls_total', { method: 'POST /oauth2/introspect', protocol: 'http', code: 'unauthenticated' })).toBe(1);
    expect(moved('tally_calls_total', { method: 'envoy.service.auth.v3.Authorization/Check', protocol: 'grpc', code: 'ok' })).toBe(1);
    expect(moved('tally_calls_total', { method: 'other', protocol: 'connect' })).toBe(1);
    expect(moved('tally_call_duration_seconds_count', { method: 'tally.v1.TokenService/Issue', code: 'ok' })).toBe(1);
    expect(moved('tally_introspections_total', { result: 'active' })).toBe(2);
    expect(moved('tally_introspections_total', { result: 'inactive' })).toBe(1);
    expect(moved('tally_introspection_inactive_reasons_total', { reason: 'malformed' })).toBe(1);
    expect(moved('tally_store_operation_duration_seconds_count', { operation: 'putToken', outcome: 'ok' })).toBe(1);
    expect(after).not.toContain(token);
    expect(after).not.toContain(callers.keys.admin);
  });

  it('counts JWTs issued by the algorithm that signed them, on either port', async () => {
    await grpc.unary(TokenService.method.rotateKeys, { algorithm: 'ML-DSA-65' }, { metadata: admin });
    const before = await scrape();
    const jwt = { subject: 'metrics-user', format: TokenFormat.JWT };
    await grpc.unary(TokenService.method.issue, jwt, { metadata: admin });
    await grpc.unary(TokenService.method.issue, { ...jwt, algorithm: 'ML-DSA-65' }, { metadata: admin });
    const connect = createClient(TokenService, createConnectTransport({ baseUrl: tally.httpUrl, httpVersion: '1.1' }));
    await connect.issue({ ...jwt, algorithm: 'ML-DSA-65' }, { headers: admin });
    await grpc.unary(TokenService.method.issue, { subject: 'metrics-user' }, { metadata: admin });
    const after = await scrape();
    const moved = (algorithm: string) => sample(after, 'tally_jwts_issued_total', { algorithm }) - sample(before, 'tally_jwts_issued_total', { algorithm });
    expect(moved('EdDSA')).toBe(1);
    expect(moved('ML-DSA-65')).toBe(2);
  });
});

describe('GET /metrics without the metrics permission', () => {
  const callers = writeCallersFile([
    { name: 'reader', permissions: ['introspect'] },
    { name: 'scraper', permissions: ['metrics'] },
  ]);
  let tally: TallyProcess;
  let grpc: GrpcTestClient;

  beforeAll(async () => {
    tally = await startTally({ env: { TALLY_CALLERS_FILE: callers.path } });
    grpc = createGrpcTestClient(tally.grpcAddress);
  });
  afterAll(async () => {
    grpc?.close();
    await tally?.stop();
  });

  it('tells an unauthenticated scraper nothing of why introspections were inactive, as it does not tell the caller', async () => {
    const reader = { authorization: `Bearer ${callers.keys.reader}` };
    for (const token of ['tly_unknown', 'not-a-token']) await grpc.unary(TokenService.method.introspect, { token }, { metadata: reader });
    const anonymous = await (await fetch(`${tally.httpUrl}/metrics`)).text();
    expect(anonymous).toContain('tally_introspections_total{result="inactive"} 2');
    expect(anonymous).not.toMatch(/reason=/);
    expect(anonymous).not.toContain('tally_introspection_inactive_reasons_total');
    const scraped = await (await fetch(`${tally.httpUrl}/metrics`, { headers: { authorization: `Bearer ${callers.keys.scraper}` } })).text();
    expect(scraped).toContain('tally_introspection_inactive_reasons_total{reason="malformed"} 2');
  });

  it('refuses a wrong key (401) and a caller without the permission (403) rather than falling back', async () => {
    const wrong = await fetch(`${tally.httpUrl}/metrics`, { headers: { authorization: 'Bearer wrong' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect((await fetch(`${tally.httpUrl}/metrics`, { headers: { authorization: `Bearer ${callers.keys.reader}` } })).status).toBe(403);
  });
});

describe('instrumentStore', () => {
  it('reports each operation\'s time and counts the ones that fail', async () => {
    const controllable = createControllableStore();
    const metrics = createMetrics({ knownMethods: [] });
    const store = instrumentStore(controllable.store, metrics.observeStore);
    await store.ping();
    controllable.setUnavailable(true);
    await expect(store.getToken('some-id')).rejects.toThrow('unavailable');
    const { body } = await metrics.render();
    expect(sample(body, 'tally_store_operation_duration_seconds_count', { operation: 'ping', outcome: 'ok' })).toBe(1);
    expect(sample(body, 'tally_store_operation_duration_seconds_count', { operation: 'getToken', outcome: 'error' })).toBe(1);
    expect(sample(body, 'tally_store_errors_total', { operation: 'getToken' })).toBe(1);
    await store.close();
  });
});

describe('a burst of calls', () => {
  const INTROSPECT = 'tally.v1.TokenService/Introspect';
  const CALLS = 4_000;
  // 2^-12 s: a binary fraction, so N of them add up to an exact sum.
  const SECONDS = 1 / 4096;

  it('scrapes as exactly as many calls, introspections and observations as were made, with scrapes running meanwhile', async () => {
    const metrics = createMetrics({ knownMethods: [INTROSPECT] });
    const store = instrumentStore(createMemoryStore(), metrics.observeStore);
    const tokens = metrics.countIntrospections(createTokenService({
      store,
      secrets: deriveSecrets(new Uint8Array(32).fill(5)),
      issuer: 'tally',
      defaultTtlMs: 60_000,
      maxTtlMs: 3_600_000,
      clockSkewMs: 1_000,
      keyAlgorithm: 'EdDSA',
      keyRefreshMs: 60_000,
    }));
    await tokens.start();
    const { token } = await tokens.issue({ subject: 'burst' });
    const logCall = metrics.countCalls(() => {});
    const introspectMethod = metrics.methodIndex(INTROSPECT);
    const grpc = metrics.protocolIndex('grpc');
    const details: CallRecord['details'] = { peer: '127.0.0.1:1', caller: 'burst' };

    const scrapes: Promise<string>[] = [];
    for (let call = 0; call < CALLS; call += 100) {
      const batch: Promise<unknown>[] = [];
      for (let inBatch = call; inBatch < call + 100; inBatch++) {
        batch.push(Promise.resolve(tokens.introspect({ token })).then(() => {
          logCall({ method: INTROSPECT, protocol: 'grpc', code: 0, durationMs: SECONDS * 1000, details });
          metrics.recordCall(introspectMethod, grpc, inBatch % 2 === 0 ? 0 : Code.Unauthenticated, SECONDS);
        }));
      }
      // Two scrapes at once, both while the batch is in flight.
      for (let scrape = 0; scrape < 2; scrape++) scrapes.push(metrics.render().then(({ body }) => body));
      await Promise.all(batch);
    }
    const final = (await metrics.render()).body;

    for (const text of [...(await Promise.all(scrapes)), final]) {
      const ok = { method: INTROSPECT, protocol: 'grpc', code: 'ok' };
      const calls = sample(text, 'tally_calls_total', ok);
      expect(calls).toBeLessThanOrEqual(CALLS * 1.5);
      expect(sample(text, 'tally_call_duration_seconds_count', ok)).toBe(calls);
      expect(sample(text, 'tally_call_duration_seconds_bucket', { ...ok, le: '+Inf' })).toBe(calls);
      expect(sample(text, 'tally_call_duration_seconds_bucket', { ...ok, le: '0.00025' })).toBe(calls);
      expect(sample(text, 'tally_call_duration_seconds_sum', ok)).toBe(calls * SECONDS);
      const active = sample(text, 'tally_introspections_total', { result: 'active' });
      expect(sample(text, 'tally_introspection_duration_seconds_count', { result: 'active' })).toBe(active);
      expect(sample(text, 'tally_introspection_duration_seconds_bucket', { result: 'active', le: '+Inf' })).toBe(active);
    }
    const ok = { method: INTROSPECT, protocol: 'grpc', code: 'ok' };
    const refused = { method: INTROSPECT, protocol: 'grpc', code: 'unauthenticated' };
    expect(sample(final, 'tally_calls_total', ok)).toBe(CALLS * 1.5);
    expect(sample(final, 'tally_calls_total', refused)).toBe(CALLS / 2);
    expect(sample(final, 'tally_call_duration_seconds_count', ok)).toBe(CALLS * 1.5);
    expect(sample(final, 'tally_call_duration_seconds_sum', ok)).toBe(CALLS * 1.5 * SECONDS);
    expect(sample(final, 'tally_call_duration_seconds_bucket', { ...ok, le: '0.0001' })).toBe(0);
    expect(sample(final, 'tally_call_duration_seconds_bucket', { ...ok, le: '0.00025' })).toBe(CALLS * 1.5);
    expect(sample(final, 'tally_call_duration_seconds_bucket', { ...refused, le: '+Inf' })).toBe(CALLS / 2);
    expect(sample(final, 'tally_call_duration_seconds_sum', refused)).toBe((CALLS / 2) * SECONDS);
    expect(sample(final, 'tally_introspections_total', { result: 'active' })).toBe(CALLS);
    expect(sample(final, 'tally_introspection_duration_seconds_count', { result: 'active' })).toBe(CALLS);
    expect(sample(final, 'tally_introspection_duration_seconds_bucket', { result: 'active', le: '5' })).toBe(CALLS);
    expect(final).not.toMatch(/result="inactive"/);
    expect(final).not.toContain(token);
    await tokens.stop();
    await store.close();
  });
});
