// One log line per call on either port carries the caller's own
// x-request-id, so an operator can match Tally's line to the caller's logs;
// an id that could forge or bloat log fields is dropped, not cleaned.
import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createCallLogger } from '../../src/transport/call-log.js';
import { createHttpServer, type HttpServer } from '../../src/transport/http/server.js';
import type { Readiness } from '../../src/transport/readiness.js';
import type { TokenServiceHandlers } from '../../src/transport/service.js';
import { TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { eventually } from '../support/eventually.js';
import { startInProcessTally, type InProcessTally } from '../support/in-process-tally.js';
import { createTallyClients, type TallyClients } from '../support/tally-clients.js';

describe('request ids in call log lines', () => {
  let tally: InProcessTally;
  let clients: TallyClients;
  beforeAll(async () => {
    tally = await startInProcessTally();
    clients = createTallyClients(tally);
  });
  afterAll(async () => {
    clients?.close();
    await tally?.close();
  });

  const lineWith = (requestId: string) => eventually(async () => {
    const line = tally.logs().find((entry) => entry.msg === 'call' && entry.request_id === requestId);
    if (line === undefined) throw new Error(`no call line with request_id ${requestId}`);
    return line;
  }, 2_000);

  it('logs the x-request-id a gRPC caller sent', async () => {
    await clients.grpc.unary(TokenService.method.listKeys, {}, { metadata: { 'x-request-id': 'grpc-req-1' } });
    expect(await lineWith('grpc-req-1')).toMatchObject({ method: 'tally.v1.TokenService/ListKeys', protocol: 'grpc' });
  });

  it('logs the x-request-id a Connect caller sent', async () => {
    await clients.connect.listKeys({}, { headers: { 'x-request-id': 'connect-req-1' } });
    expect(await lineWith('connect-req-1')).toMatchObject({ method: 'tally.v1.TokenService/ListKeys', protocol: 'connect' });
  });

  it.each([
    ['with a space', 'a b'],
    ['too long', 'x'.repeat(129)],
    ['with a quote', 'a"b'],
  ])('drops an id %s', async (_name, requestId) => {
    const marker = `marker-${Math.random()}`;
    await clients.grpc.unary(TokenService.method.listKeys, {}, { metadata: { 'x-request-id': requestId, 'x-marker': marker } });
    // A well-formed call after it shows the log has caught up.
    await clients.grpc.unary(TokenService.method.listKeys, {}, { metadata: { 'x-request-id': marker } });
    await lineWith(marker);
    expect(tally.logs().some((entry) => entry.request_id === requestId)).toBe(false);
  });
});

describe('the outcome in the call log', () => {
  // A handler that succeeds with an answer JSON cannot hold: connect-node
  // fails the call after the handler returned, and the log must say so.
  let server: HttpServer;
  let url: string;
  const lines: Record<string, unknown>[] = [];
  beforeAll(async () => {
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
    const handlers = { introspect: () => ({ active: true, claims: { n: Number.POSITIVE_INFINITY } }) } as unknown as TokenServiceHandlers;
    server = createHttpServer({
      handlers,
      readiness: { serving: () => true } as unknown as Readiness,
      logCall: createCallLogger(logger),
      logger,
      maxMessageBytes: 64 * 1024,
    });
    url = `http://127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
  });
  afterAll(async () => {
    await server?.shutdown(1_000);
  });

  it('records the error the client got when the answer could not be written as JSON, not ok', async () => {
    const response = await fetch(`${url}/tally.v1.TokenService/Introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'x' }),
    });
    expect(response.status).toBe(500);
    const line = await eventually(async () => {
      const found = lines.find((entry) => entry.method === 'tally.v1.TokenService/Introspect');
      if (found === undefined) throw new Error('no call line yet');
      return found;
    }, 2_000);
    expect(line.code).toBe('internal');
  });
});

describe('routine calls in the call log', () => {
  function logged(level: 'info' | 'debug') {
    const lines: Record<string, unknown>[] = [];
    const logCall = createCallLogger(createLogger({ level, destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } }));
    return { lines, logCall };
  }
  const record = (method: string, code: 0 | 14) => ({ method, protocol: 'grpc', code, durationMs: 1, details: { caller: 'orders' }, ...(code === 0 ? {} : { error: new ConnectError('the service is unavailable', Code.Unavailable) }) });

  it('logs a watching client\'s acknowledgements at debug when they succeed, and at their failure as any call', () => {
    const { lines, logCall } = logged('info');
    logCall(record('tally.v1.TokenService/AcknowledgeRevocations', 0));
    logCall(record('tally.v1.TokenService/ListKeys', 0));
    logCall(record('tally.v1.TokenService/AcknowledgeRevocations', 14));
    expect(lines.map((line) => [line.method, line.level])).toEqual([
      ['tally.v1.TokenService/ListKeys', 'info'],
      ['tally.v1.TokenService/AcknowledgeRevocations', 'warn'],
    ]);
    const debug = logged('debug');
    debug.logCall(record('tally.v1.TokenService/AcknowledgeRevocations', 0));
    expect(debug.lines.map((line) => [line.method, line.level])).toEqual([['tally.v1.TokenService/AcknowledgeRevocations', 'debug']]);
  });
});
