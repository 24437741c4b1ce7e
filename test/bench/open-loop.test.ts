// The bench's open-loop generator against a real node:http2 server answering gRPC.
// Every bound asserted here follows from the schedule alone (calls due every 5 ms,
// none sent early), not from how fast this machine is: a slower machine only makes
// the measured latencies larger than the lower bounds below.
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition } from '@grpc/grpc-js';
import { createServer, constants, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { grpcFrame, grpcRequestHeaders } from '../../bench/lib/grpc-wire.js';
import { intendedSendTime, runOpenLoop, type OpenLoopOptions } from '../../bench/lib/open-loop.js';

const answer = grpcFrame(Buffer.from('the verified answer'));
const request = grpcFrame(Buffer.from('a request'));
const callsPerSecond = 200;
const durationSeconds = 2;
const stallMilliseconds = 300;
// The stall starts when this many calls have arrived.
const stallAtArrival = 100;

type Reply = (stream: ServerHttp2Stream, arrival: number) => void;

function respond(stream: ServerHttp2Stream, body: Buffer = answer): void {
  if (stream.destroyed) return;
  stream.respond({ [constants.HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(body);
}

/** How grpc-js answers an error: the status in the only HEADERS frame, no body. */
function respondTrailersOnly(stream: ServerHttp2Stream, grpcStatus: string): void {
  stream.respond({ [constants.HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/grpc', 'grpc-status': grpcStatus }, { endStream: true });
}

let server: Http2Server | undefined;

async function startServer(reply: Reply): Promise<string> {
  let arrivals = 0;
  server = createServer();
  server.on('stream', (stream) => {
    stream.resume();
    stream.once('end', () => reply(stream as ServerHttp2Stream, ++arrivals));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
});

function options(origin: string): OpenLoopOptions {
  return {
    origin,
    path: '/tally.v1.TokenService/Introspect',
    body: request,
    expectedBody: answer,
    headers: grpcRequestHeaders,
    callsPerSecond,
    warmUpSeconds: 0,
    durationSeconds,
    connections: 2,
    drainMilliseconds: 10_000,
  };
}

describe('the open-loop generator', () => {
  it('schedules call i at start + i / rate, evenly spaced', () => {
    expect([0, 1, 2, 199].map((index) => intendedSendTime(1_000, index, callsPerSecond))).toEqual([1_000, 1_005, 1_010, 1_995]);
  });

  it('charges a server stall to every call scheduled behind it, not only to the calls in flight', async () => {
    // Arrival 100 stops the server answering for 300 ms: it and every call arriving
    // during the stall are answered when it ends, as after a GC pause or a blocked loop.
    let stallEnds: Promise<void> | undefined;
    const origin = await startServer((stream, arrival) => {
      if (arrival === stallAtArrival) stallEnds = new Promise((resolve) => setTimeout(resolve, stallMilliseconds));
      if (stallEnds === undefined) respond(stream);
      else void stallEnds.then(() => respond(stream));
    });

    const result = await runOpenLoop(options(origin));

    expect(result).toMatchObject({ scheduled: 400, answered: 400, wrong: 0, unanswered: 0 });
    // At most 99 calls were answered before the stall, which began no earlier than call 99 was
    // due (495 ms) and ended 300 ms later. So calls 0..103 hold at least 5 answered after 795 ms
    // and due by 515 ms (latency ≥ 280 ms: the 1% slowest), and calls 0..139 at least 41 due by
    // 695 ms (latency ≥ 100 ms: the 10% slowest).
    expect(result.latency.p99).toBeGreaterThanOrEqual(280);
    expect(result.latency.p90).toBeGreaterThanOrEqual(100);
    // Most calls never met the stall: it is charged to those behind it, not smeared over all.
    expect(result.latency.p50).toBeLessThan(stallMilliseconds);
  });

  it('counts a late send from the time the call was due, and reports the generator saturated', async () => {
    // Blocking this process's loop blocks the generator in it: the calls due meanwhile go out late.
    const origin = await startServer((stream, arrival) => {
      if (arrival === stallAtArrival) {
        const until = performance.now() + stallMilliseconds;
        while (performance.now() < until);
      }
      respond(stream);
    });

    const result = await runOpenLoop(options(origin));

    expect(result).toMatchObject({ scheduled: 400, answered: 400, wrong: 0, unanswered: 0 });
    // Nothing was sent for 300 ms from a moment when at most the calls due by then were sent:
    // at least the next 5 calls (due within 25 ms of it) went out at least 275 ms late.
    expect(result.sendLag.p99).toBeGreaterThanOrEqual(275);
    expect(result.latency.p99).toBeGreaterThanOrEqual(275);
    expect(result.saturated).toMatch(/p99 send lag/);
  });

  it('never sends ahead of the schedule', async () => {
    const origin = await startServer((stream) => respond(stream));

    const result = await runOpenLoop(options(origin));

    expect(result.answered).toBe(400);
    expect(result.sendLag.p50).toBeGreaterThanOrEqual(0);
    expect(result.achievedCallsPerSecond).toBeLessThanOrEqual(callsPerSecond);
  });

  it('checks every answer byte for byte: a different body, a short one or a gRPC error is a wrong answer', async () => {
    const origin = await startServer((stream, arrival) => {
      if (arrival === 10) respond(stream, grpcFrame(Buffer.from('the verified answeR')));
      else if (arrival === 20) respond(stream, grpcFrame(Buffer.from('the verified')));
      else if (arrival === 30) respondTrailersOnly(stream, '5');
      else respond(stream);
    });

    const result = await runOpenLoop(options(origin));

    expect(result.wrong).toBe(3);
    const wrong = result.wrongExamples.join('\n');
    expect(wrong).toMatch(/a 24-byte answer that is not the expected 24 bytes/);
    expect(wrong).toMatch(/a 17-byte answer that is not the expected 24 bytes/);
    expect(wrong).toMatch(/trailers-only answer/);
    expect(result.answered).toBe(397);
  });

  it('reads a grpc-js server: its answers pass, its error fails, and the server\'s flow control is kept', async () => {
    // 1 KiB requests: 400 calls send 400 KiB, past the 64 KiB connection window, so the
    // generator must wait for and read the server's WINDOW_UPDATE frames.
    const payload = Buffer.alloc(1_024, 7);
    const passThrough = (value: Buffer): Buffer => value;
    const service: ServiceDefinition = {
      Introspect: {
        path: '/tally.v1.TokenService/Introspect',
        requestStream: false,
        responseStream: false,
        requestSerialize: passThrough,
        requestDeserialize: passThrough,
        responseSerialize: passThrough,
        responseDeserialize: passThrough,
      },
    };
    let calls = 0;
    const grpcServer = new Server();
    grpcServer.addService(service, {
      Introspect(call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) {
        calls++;
        if (calls === 50) callback({ code: status.NOT_FOUND, details: 'no such token' });
        else callback(null, call.request.equals(payload) ? Buffer.from('the verified answer') : Buffer.from('a wrong request'));
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    try {
      const result = await runOpenLoop({ ...options(`http://127.0.0.1:${port}`), body: grpcFrame(payload), connections: 1 });

      expect(result).toMatchObject({ scheduled: 400, answered: 399, wrong: 1, unanswered: 0 });
      expect(result.wrongExamples.join('\n')).toMatch(/trailers-only answer/);
    } finally {
      grpcServer.forceShutdown();
    }
  });
});
