// The outcome a call's log line records when it is not the handler's own,
// and which calls the default level writes. What every port logs for every
// call (method, protocol, caller, token id, the caller's x-request-id) is in
// the port suite, conformance.ts.
import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createCallLogger } from '../../src/transport/call/call-log.js';
import { createCallPipeline } from '../../src/transport/call/pipeline.js';
import { createHttpServer, type HttpServer } from '../../src/transport/http/server.js';
import type { Readiness } from '../../src/transport/telemetry/readiness.js';
import type { TokenServiceHandlers } from '../../src/transport/service.js';
import { TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { eventually } from '../support/eventually.js';
import { startInProcessTally, type InProcessTally } from '../support/in-process-tally.js';
import { createTallyClients, type TallyClients } from '../support/tally-clients.js';

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
      // The handler above is served as it is (no guard, no validation): only the pipeline's first and last steps run.
      pipeline: createCallPipeline({
        guard: { check: () => { throw new Error('not asked: the handler is not served by the pipeline'); } },
        validate: () => {},
        count: () => {},
        log: createCallLogger(logger),
      }),
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

describe('which calls the default log level writes', () => {
  // README, "Logs": a call that only reads and found all well is at debug;
  // everything else is at info or above.
  let tally: InProcessTally;
  let clients: TallyClients;
  beforeAll(async () => {
    tally = await startInProcessTally({ env: { TALLY_LOG_LEVEL: 'info' } });
    clients = createTallyClients(tally);
  });
  afterAll(async () => {
    clients?.close();
    await tally?.close();
  });

  it('writes Issue, Revoke, inactive answers and refusals, not an introspection that found the token active', async () => {
    const { grpc } = clients;
    const as = (requestId: string, more: Record<string, string> = {}) => ({ metadata: { 'x-request-id': requestId, ...more } });
    const issued = await grpc.unary(TokenService.method.issue, { subject: 'quiet' }, as('issue'));
    await grpc.unary(TokenService.method.introspect, { token: issued.token }, as('active'));
    const oauth = await fetch(`${tally.httpUrl}/oauth2/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': 'oauth-active' },
      body: `token=${issued.token}`,
    });
    expect(((await oauth.json()) as { active: boolean }).active).toBe(true);
    await grpc.unary(TokenService.method.revoke, { target: { case: 'token', value: issued.token } }, as('revoke'));
    await grpc.unary(TokenService.method.introspect, { token: issued.token }, as('inactive'));
    const refused = await grpc.unary(TokenService.method.introspect, { token: issued.token }, as('refused', { authorization: 'Bearer not-a-key' })).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Error);
    await eventually(async () => {
      const written = tally.logs().filter((line) => line.msg === 'call' && typeof line.request_id === 'string');
      expect(written.map((line) => [line.request_id, line.level])).toEqual([
        ['issue', 'info'],
        ['revoke', 'info'],
        ['inactive', 'info'],
        ['refused', 'info'],
      ]);
      expect(written.find((line) => line.request_id === 'inactive')?.inactive_reason).toBe('revoked');
    }, 2_000);
  });
});

describe('routine calls in the call log', () => {
  function logged(level: 'info' | 'debug') {
    const lines: Record<string, unknown>[] = [];
    const logCall = createCallLogger(createLogger({ level, destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } }));
    return { lines, logCall };
  }
  const record = (method: string, code: 0 | 14) => ({ method, protocol: 'grpc', code, durationMs: 1, details: { peer: '127.0.0.1:1', caller: 'orders' }, ...(code === 0 ? {} : { error: new ConnectError('the service is unavailable', Code.Unavailable) }) });

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
