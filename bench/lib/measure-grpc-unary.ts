// One gRPC unary method under h2load, with the checks that make the number mean
// something: h2load counts HTTP statuses only, and a gRPC error is an HTTP 200.
//
// 1. Before the load, the exact body file h2load will send is posted once and the
//    answer must be grpc-status 0 and pass the row's own check (e.g. active: true).
// 2. After the load, every answered request must have carried exactly that
//    answer's number of body bytes: an error (trailers only, no body) or an
//    `active: false` (an empty message) is shorter, so the byte total proves that
//    no answer under load was one of them.
// 3. The same call once more after the load, and the server must still be running.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRunning, type StartedProcess } from './child-processes.js';
import { grpcFrame, grpcRequestHeaders, parseGrpcFrames, postGrpcBody } from './grpc-wire.js';
import { h2loadArguments, runH2load } from './h2load.js';
import type { BenchContext } from './context.js';
import type { Measurement } from './row.js';

/** One unary call a row puts under load, and how to tell its answer is right. */
export interface GrpcUnaryCall {
  /** Names the scratch files; unique per row. */
  readonly slug: string;
  readonly address: string;
  readonly path: string;
  readonly request: Uint8Array;
  /** Throws when a decoded answer is not the one the row expects. */
  readonly checkAnswer: (message: Buffer) => void;
  readonly server: StartedProcess;
}

export interface GrpcUnaryLoad extends GrpcUnaryCall {
  /** Caps the offered load (h2load --rps), for latency at a set rate rather than at the peak. */
  readonly ratePerConnection?: number;
  /**
   * Every answer differs but has the same size (Issue: a new token each call, of
   * fixed length), so the answers before and after the load are compared by size.
   */
  readonly answersVary?: boolean;
  /** Other connections than the bench's settings (the open-loop check compares at the generator's). */
  readonly connections?: number;
  /** Other streams per connection than the bench's settings (1 with 1 connection: one call in flight). */
  readonly streamsPerConnection?: number;
}

export async function measureGrpcUnary(context: BenchContext, load: GrpcUnaryLoad): Promise<Measurement> {
  const origin = `http://${load.address}`;
  const body = grpcFrame(load.request);
  const bodyPath = join(context.scratchDirectory, `${load.slug}.body`);
  writeFileSync(bodyPath, body);

  const before = await expectOkAnswer(origin, load, body, 'before the load');
  const h2loadRequest = {
    url: `${origin}${load.path}`,
    bodyPath,
    headers: grpcRequestHeaders,
    settings: {
      ...context.settings,
      connections: load.connections ?? context.settings.connections,
      streamsPerConnection: load.streamsPerConnection ?? context.settings.streamsPerConnection,
    },
    ratePerConnection: load.ratePerConnection,
    logPath: join(context.scratchDirectory, `${load.slug}.h2load-log.tsv`),
    outputPath: join(context.scratchDirectory, `${load.slug}.h2load-output.txt`),
  };
  const result = await runH2load(h2loadRequest);

  const { requests, statusCodes } = result;
  const problems: string[] = [];
  if (requests.failed + requests.errored + requests.timeout > 0) {
    problems.push(`${requests.failed} failed, ${requests.errored} errored, ${requests.timeout} timed out`);
  }
  if (statusCodes['3xx'] + statusCodes['4xx'] + statusCodes['5xx'] > 0) {
    problems.push(`non-2xx statuses: ${JSON.stringify(statusCodes)}`);
  }
  const expectedBytes = statusCodes['2xx'] * before.length;
  if (result.dataBytes !== expectedBytes) {
    const shortAnswers = Math.round((expectedBytes - result.dataBytes) / before.length);
    problems.push(
      `response bodies held ${result.dataBytes} bytes, expected ${statusCodes['2xx']} × ${before.length} = ${expectedBytes} ` +
        `(about ${shortAnswers} answers were not the verified one)`,
    );
  }
  if (!isRunning(load.server)) problems.push(`${load.server.name} is no longer running:\n${load.server.output()}`);
  if (problems.length > 0) throw new Error(`${load.slug}: the load was not all correct answers:\n  ${problems.join('\n  ')}\n${result.rawOutput}`);

  const after = await expectOkAnswer(origin, load, body, 'after the load');
  if (load.answersVary === true ? after.length !== before.length : !after.equals(before)) {
    throw new Error(`${load.slug}: the answer after the load differs from the one before it`);
  }

  return {
    callsPerSecond: result.requestsPerSecond,
    p50Milliseconds: result.latency.p50,
    p99Milliseconds: result.latency.p99,
    requests: requests.succeeded,
    // The body file is gone after the run; its name says what it held.
    command: `h2load ${h2loadArguments({ ...h2loadRequest, bodyPath: `${load.slug}.body` }, h2loadRequest.settings.durationSeconds).map(shellQuote).join(' ')}`,
    notes: [
      `request body ${body.length} B, response body ${before.length} B (gRPC frames)`,
      `p50/p99 over ${result.latency.samples} logged requests`,
    ],
  };
}

/** Posts the exact body once; the answer must be grpc-status 0 and pass the row's check. Returns its response body. */
export async function expectOkAnswer(origin: string, load: GrpcUnaryCall, body: Buffer, when: string): Promise<Buffer> {
  const answer = await postGrpcBody(origin, load.path, body);
  if (answer.httpStatus !== 200 || answer.grpcStatus !== '0') {
    throw new Error(
      `${load.slug} ${when}: HTTP ${answer.httpStatus}, grpc-status ${answer.grpcStatus ?? 'missing'}` +
        `${answer.grpcMessage ? ` (${answer.grpcMessage})` : ''}\n${load.server.output()}`,
    );
  }
  const messages = parseGrpcFrames(answer.body);
  if (messages.length !== 1) throw new Error(`${load.slug} ${when}: expected one message, got ${messages.length}`);
  load.checkAnswer(messages[0]!);
  return answer.body;
}

export function shellQuote(argument: string): string {
  return /^[\w@%+=:,./-]+$/.test(argument) ? argument : `'${argument.replaceAll("'", "'\\''")}'`;
}
