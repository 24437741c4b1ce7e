// The outcome a call's log line records when it is not the handler's own.
// What every port logs for every call (method, protocol, caller, token id,
// the caller's x-request-id) is in the port suite, conformance.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createCallLogger } from '../../src/transport/call-log.js';
import { createCallPipeline } from '../../src/transport/pipeline.js';
import { createHttpServer, type HttpServer } from '../../src/transport/http/server.js';
import type { Readiness } from '../../src/transport/readiness.js';
import type { TokenServiceHandlers } from '../../src/transport/service.js';
import { eventually } from '../support/eventually.js';

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
