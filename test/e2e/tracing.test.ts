// OpenTelemetry traces from the real process to a real OTLP/HTTP receiver on
// loopback: every call joins the trace its caller sent (W3C traceparent, in
// gRPC metadata, HTTP headers, or the headers of the request Envoy checks),
// is one SERVER span named and attributed by the conventions, has a child
// span for each store operation and signature, and no exported byte holds a
// token or an API key. The call's log line carries the same trace id.

import { randomBytes } from 'node:crypto';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintOpaqueToken } from '../../src/core/formats/opaque.js';
import { Authorization } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { TokenFormat, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { eventually } from '../support/eventually.js';
import { createGrpcTestClient, grpcStatusOf, type GrpcTestClient } from '../support/grpc-client.js';
import { writeCallersFile } from '../support/keyed-callers.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';
import { startRedis, type RedisServerHandle } from '../support/redis-server.js';
import { runTallyToExit, startTally, type TallyProcess } from '../support/tally-process.js';

const { issue, introspect } = TokenService.method;
/** Well formed, so it is looked up, and never issued. */
const WELL_FORMED_UNKNOWN_TOKEN = mintOpaqueToken({ bytes: (length) => new Uint8Array(randomBytes(length)) });
const SERVER = 2;
const INTERNAL = 1;

const callers = writeCallersFile([
  { name: 'orders', permissions: ['issue', 'introspect'] },
  { name: 'envoy', permissions: ['ext_authz'] },
]);

/** A caller's trace context: a fresh trace, the caller's span in it, sampled. */
function callerTrace() {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

function bearer(caller: string) {
  return `Bearer ${callers.keys[caller]}`;
}

describe('tracing, with an OTLP endpoint set', () => {
  let redis: RedisServerHandle;
  let receiver: OtlpReceiver;
  let tally: TallyProcess;
  let grpc: GrpcTestClient;
  /** Every token the calls below carried or got back: none may be in any exported byte (the last test). */
  const tokensSeen: string[] = [];

  beforeAll(async () => {
    [redis, receiver] = await Promise.all([startRedis(), startOtlpReceiver()]);
    tally = await startTally({
      env: {
        TALLY_REDIS_URL: redis.url,
        TALLY_MASTER_KEY: Buffer.alloc(32, 5).toString('base64'),
        TALLY_CALLERS_FILE: callers.path,
        TALLY_PHANTOM_TOKEN_TTL: '60s',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '50',
      },
    });
    grpc = createGrpcTestClient(tally.grpcAddress);
  });
  afterAll(async () => {
    grpc?.close();
    await tally?.stop();
    await Promise.all([redis?.stop(), receiver?.close()]);
  });

  /** The span of the call made in the caller's trace, once exported, and its children. */
  async function callSpan(sent: { traceId: string; spanId: string }, name: string) {
    const span = await eventually(async () => {
      const found = receiver.spans().find((each) => each.traceId === sent.traceId && each.parentSpanId === sent.spanId);
      if (found === undefined) throw new Error(`no span exported under ${sent.traceId}/${sent.spanId} yet`);
      return found;
    }, 10_000);
    expect(span).toMatchObject({ name, kind: SERVER });
    const children = () => receiver.spans().filter((each) => each.parentSpanId === span.spanId);
    return { span, children };
  }

  const names = (spans: ReceivedSpan[]) => spans.map((span) => span.name).sort();

  /** The call's log line, once written (pino writes asynchronously). */
  const logLine = (matches: (line: Record<string, unknown>) => boolean) =>
    eventually(async () => {
      const found = tally.logs().find(matches);
      if (found === undefined) throw new Error('no such log line yet');
      return found;
    }, 5_000);

  it('joins the trace of a gRPC call, records its outcome and caller, and a child span per store operation and signature', async () => {
    const sent = callerTrace();
    const issued = await grpc.unary(issue, { subject: 'alice', audience: ['orders'], format: TokenFormat.JWT }, {
      metadata: { authorization: bearer('orders'), traceparent: sent.traceparent, tracestate: 'caller=7' },
    });
    tokensSeen.push(issued.token);
    const { span, children } = await callSpan(sent, 'tally.v1.TokenService/Issue');
    expect(span.attributes).toMatchObject({
      'rpc.system.name': 'grpc',
      'rpc.method': 'tally.v1.TokenService/Issue',
      'rpc.status_code': 'OK',
      'tally.protocol': 'grpc',
      'tally.caller': 'orders',
    });
    expect(span.resource).toMatchObject({ 'service.name': 'tally' });
    const steps = await eventually(async () => {
      const found = children();
      if (!found.some((child) => child.name === 'store putToken')) throw new Error('the store span is not exported yet');
      return found;
    }, 10_000);
    expect(names(steps)).toEqual(['sign at+jwt', 'store putToken', 'store revocationSequence']);
    for (const step of steps) expect(step).toMatchObject({ traceId: sent.traceId, kind: INTERNAL });
    expect(steps.find((step) => step.name === 'sign at+jwt')!.attributes).toMatchObject({ 'tally.jwt.algorithm': 'EdDSA' });
    expect(steps.find((step) => step.name === 'store putToken')!.attributes).toEqual({ 'tally.store.operation': 'putToken' });

    // The call's log line names the same trace and span.
    const line = await logLine((each) => each.method === 'tally.v1.TokenService/Issue' && each.token_id === issued.tokenId);
    expect(line).toMatchObject({ trace_id: sent.traceId, span_id: span.spanId });
  });

  it('says whether an introspected token was active, over gRPC and Connect, and never why not', async () => {
    const issued = await grpc.unary(issue, { subject: 'bob' }, { metadata: { authorization: bearer('orders') } });
    tokensSeen.push(issued.token);

    const good = callerTrace();
    await grpc.unary(introspect, { token: issued.token }, { metadata: { authorization: bearer('orders'), traceparent: good.traceparent } });
    const active = await callSpan(good, 'tally.v1.TokenService/Introspect');
    expect(active.span.attributes).toMatchObject({ 'tally.introspection.active': true, 'tally.caller': 'orders' });

    const unknown = callerTrace();
    const connect = createClient(TokenService, createConnectTransport({ baseUrl: tally.httpUrl, httpVersion: '1.1' }));
    const answer = await connect.introspect(
      { token: `${issued.token.slice(0, -1)}${issued.token.endsWith('A') ? 'B' : 'A'}` },
      { headers: { authorization: bearer('orders'), traceparent: unknown.traceparent } },
    );
    expect(answer.active).toBe(false);
    const inactive = await callSpan(unknown, 'tally.v1.TokenService/Introspect');
    expect(inactive.span.attributes).toMatchObject({
      'rpc.system.name': 'connectrpc',
      'rpc.status_code': 'ok',
      'tally.protocol': 'connect',
      'tally.introspection.active': false,
    });
    // The reason is for the log line (same trace id), not for the trace.
    expect(Object.keys(inactive.span.attributes).filter((key) => key.includes('reason'))).toEqual([]);
    const line = await logLine((each) => each.trace_id === unknown.traceId);
    expect(line.inactive_reason).toBeDefined();
  });

  it('joins the trace of an RFC 7662 introspection, with the HTTP attributes', async () => {
    const issued = await grpc.unary(issue, { subject: 'carol' }, { metadata: { authorization: bearer('orders') } });
    tokensSeen.push(issued.token);
    const sent = callerTrace();
    const response = await fetch(`${tally.httpUrl}/oauth2/introspect`, {
      method: 'POST',
      headers: { authorization: bearer('orders'), 'content-type': 'application/x-www-form-urlencoded', traceparent: sent.traceparent },
      body: new URLSearchParams({ token: issued.token }),
    });
    expect(response.status).toBe(200);
    const { span, children } = await callSpan(sent, 'POST /oauth2/introspect');
    expect(span.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/oauth2/introspect',
      'http.response.status_code': 200,
      'tally.protocol': 'http',
      'tally.caller': 'orders',
      'tally.introspection.active': true,
    });
    // The replica holds the token's record: the answer comes from memory, with no store round trip to record.
    expect(names(children())).not.toContain('store getToken');
    // One it does not hold is looked up in the store, as a child span.
    const unknown = callerTrace();
    await fetch(`${tally.httpUrl}/oauth2/introspect`, {
      method: 'POST',
      headers: { authorization: bearer('orders'), 'content-type': 'application/x-www-form-urlencoded', traceparent: unknown.traceparent },
      body: new URLSearchParams({ token: WELL_FORMED_UNKNOWN_TOKEN }),
    });
    const looked = await callSpan(unknown, 'POST /oauth2/introspect');
    await eventually(async () => expect(names(looked.children())).toContain('store getToken'), 10_000);
  });

  it('joins the trace Envoy sends with a Check, else the one of the request it checks, and signs the phantom token in a child span', async () => {
    const issued = await grpc.unary(issue, { subject: 'dave' }, { metadata: { authorization: bearer('orders') } });
    tokensSeen.push(issued.token);
    const checkOf = (headers: Record<string, string>) => ({
      attributes: { request: { http: { method: 'GET', path: '/orders/1', host: 'shop.internal', headers: { authorization: `Bearer ${issued.token}`, ...headers } } } },
    });

    const envoys = callerTrace();
    const clients = callerTrace();
    const allowed = await grpc.unary(Authorization.method.check, checkOf({ traceparent: clients.traceparent }), {
      metadata: { authorization: bearer('envoy'), traceparent: envoys.traceparent },
    });
    const upstream = (allowed.httpResponse.value?.headers ?? []).find((option) => option.header?.key === 'authorization');
    const phantom = upstream!.header!.value.replace(/^Bearer /, '');
    expect(phantom.split('.')).toHaveLength(3);
    tokensSeen.push(phantom);
    const { span, children } = await callSpan(envoys, 'envoy.service.auth.v3.Authorization/Check');
    expect(span.attributes).toMatchObject({ 'tally.caller': 'envoy', 'tally.introspection.active': true, 'rpc.status_code': 'OK' });
    await eventually(async () => expect(names(children())).toContain('sign tally-internal+jwt'), 10_000);

    // Envoy without tracing of its own: the client's traceparent in the checked request.
    const alone = callerTrace();
    await grpc.unary(Authorization.method.check, checkOf({ traceparent: alone.traceparent }), { metadata: { authorization: bearer('envoy') } });
    await callSpan(alone, 'envoy.service.auth.v3.Authorization/Check');
  });

  it('records a call refused before its message is read, and a call with no traceparent as a new trace', async () => {
    const sent = callerTrace();
    const refused = await grpcStatusOf(grpc.unary(issue, { subject: 'eve' }, { metadata: { authorization: 'Bearer not-a-key', traceparent: sent.traceparent } }));
    expect(refused.code).toBe(status.UNAUTHENTICATED);
    const { span } = await callSpan(sent, 'tally.v1.TokenService/Issue');
    expect(span.attributes).toMatchObject({ 'rpc.status_code': 'UNAUTHENTICATED' });
    // A refusal is the caller's fault, not the server's: no error status.
    expect(span.statusCode).toBe(0);

    const before = new Set(receiver.spans().map((each) => each.traceId));
    const issued = await grpc.unary(issue, { subject: 'frank' }, { metadata: { authorization: bearer('orders') } });
    tokensSeen.push(issued.token);
    const line = await logLine((each) => each.token_id === issued.tokenId);
    expect(line.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(before.has(line.trace_id as string)).toBe(false);
    const root = await eventually(async () => {
      const found = receiver.spans().find((each) => each.traceId === line.trace_id && each.name === 'tally.v1.TokenService/Issue');
      if (found === undefined) throw new Error('not exported yet');
      return found;
    }, 10_000);
    expect(root.parentSpanId).toBe('');
  });

  it('exports no token, JWT part, claim or API key, in any span of any call above', async () => {
    const issued = await Promise.all(
      [TokenFormat.OPAQUE, TokenFormat.JWT].map((format) =>
        grpc.unary(issue, { subject: 'grace', format, claims: { note: 'secret-claim-value' } }, { metadata: { authorization: bearer('orders'), traceparent: callerTrace().traceparent } }),
      ),
    );
    for (const { token } of issued) {
      await grpc.unary(introspect, { token }, { metadata: { authorization: bearer('orders'), traceparent: callerTrace().traceparent } });
    }
    tokensSeen.push(...issued.map(({ token }) => token));
    // Everything in flight is exported before the process ends.
    await tally.stop();
    const exported = Buffer.concat(receiver.exports().map((each) => each.body)).toString('utf8');
    expect(exported).toContain('tally.v1.TokenService/Introspect');
    // Every token of every test above: issued, introspected, checked by Envoy, and the phantom token Tally signed.
    expect(tokensSeen.length).toBeGreaterThanOrEqual(8);
    for (const token of tokensSeen) {
      expect(exported).not.toContain(token);
      for (const part of token.split('.')) expect(exported).not.toContain(part);
    }
    // Not even the non-secret id: the log line has it, under the same trace id.
    for (const { tokenId } of issued) expect(exported).not.toContain(tokenId);
    for (const key of Object.values(callers.keys)) expect(exported).not.toContain(key);
    expect(exported).not.toContain('secret-claim-value');
  });
});

describe('tracing, by the other OTEL_* settings', () => {
  let receiver: OtlpReceiver;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });

  it('exports OTLP/protobuf by default, to the traces endpoint as given, with no token in it', async () => {
    const tally = await startTally({ env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.endpoint}/v1/traces` } });
    const grpc = createGrpcTestClient(tally.grpcAddress);
    const sent = callerTrace();
    try {
      const issued = await grpc.unary(issue, { subject: 'heidi' }, { metadata: { traceparent: sent.traceparent } });
      await tally.stop();
      const exported = receiver.exports();
      expect(exported.map((each) => each.contentType)).toContain('application/x-protobuf');
      const bytes = Buffer.concat(exported.map((each) => each.body));
      // Protobuf carries ids as raw bytes and names as UTF-8.
      expect(bytes.includes(Buffer.from(sent.traceId, 'hex'))).toBe(true);
      expect(bytes.includes(Buffer.from(sent.spanId, 'hex'))).toBe(true);
      expect(bytes.includes(Buffer.from('tally.v1.TokenService/Issue'))).toBe(true);
      expect(bytes.includes(Buffer.from(issued.token))).toBe(false);
    } finally {
      grpc.close();
      await tally.stop();
    }
  });

  it('exports nothing and logs no trace id with OTEL_TRACES_EXPORTER=none, even with an endpoint set', async () => {
    const before = receiver.exports().length;
    // At debug, so that the introspection that finds the token active writes its line too.
    const tally = await startTally({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_TRACES_EXPORTER: 'none', OTEL_BSP_SCHEDULE_DELAY: '50', TALLY_LOG_LEVEL: 'debug' } });
    const grpc = createGrpcTestClient(tally.grpcAddress);
    try {
      const issued = await grpc.unary(issue, { subject: 'ivan' }, { metadata: { traceparent: callerTrace().traceparent } });
      await grpc.unary(introspect, { token: issued.token }, { metadata: { traceparent: callerTrace().traceparent } });
      // Stopping exports whatever a tracing Tally still holds, so nothing more can come after it.
      await tally.stop();
      expect(receiver.exports().length).toBe(before);
      const calls = tally.logs().filter((line) => line.msg === 'call');
      expect(calls.length).toBeGreaterThanOrEqual(2);
      for (const line of calls) expect(line).not.toHaveProperty('trace_id');
    } finally {
      grpc.close();
      await tally.stop();
    }
  });

  it('answers every call while the collector is down, and says so in the log', async () => {
    const closed = await startOtlpReceiver();
    const endpoint = closed.endpoint;
    await closed.close();
    const tally = await startTally({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_BSP_EXPORT_TIMEOUT: '500' } });
    const grpc = createGrpcTestClient(tally.grpcAddress);
    try {
      for (let call = 0; call < 5; call += 1) {
        const issued = await grpc.unary(issue, { subject: 'judy' }, { metadata: { traceparent: callerTrace().traceparent } });
        expect((await grpc.unary(introspect, { token: issued.token })).active).toBe(true);
      }
      const warning = await eventually(async () => {
        const found = tally.logs().find((line) => line.level === 'warn' && String(line.msg).startsWith('tracing: spans could not be exported'));
        if (found === undefined) throw new Error('no warning yet');
        return found;
      }, 10_000);
      // The exporter's message, not its stack.
      expect(String(warning.error)).not.toContain('\n');
    } finally {
      grpc.close();
      await tally.stop();
    }
  });

  it('refuses to start on a bad OTEL_* value, naming the variable', async () => {
    const { code, stderr } = await runTallyToExit({ env: { OTEL_TRACES_SAMPLER: 'sometimes' } });
    expect(code).toBe(1);
    expect(stderr).toContain('OTEL_TRACES_SAMPLER: "sometimes" is not one of');
  });
});
