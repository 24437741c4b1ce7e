// Start-up and shutdown of the real process: --help, bad settings, and the
// SIGTERM drain.

import * as grpc from '@grpc/grpc-js';
import { request } from 'node:http';
import { create, toBinary } from '@bufbuild/protobuf';
import { afterEach, describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config.js';
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckResponse,
} from '../../src/gen/grpc/health/v1/health_pb.js';
import { IssueRequestSchema } from '../../src/gen/tally/v1/token_service_pb.js';
import { eventually } from '../support/eventually.js';
import { createGrpcTestClient } from '../support/grpc-client.js';
import { startRawGrpcCall } from '../support/raw-grpc.js';
import { runTallyToExit, startTally, type TallyProcess } from '../support/tally-process.js';

/** An HTTP/1.1 request whose body is held back until finish(): a call in flight. */
function startSlowHttpRequest(url: string, body: string) {
  const outgoing = request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' },
  });
  const accepted = new Promise<void>((resolve) => outgoing.once('continue', resolve));
  const result = new Promise<{ status: number; body: string }>((resolve, reject) => {
    outgoing.on('response', (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode!, body: text }));
    });
    outgoing.on('error', reject);
  });
  outgoing.flushHeaders();
  return { accepted, result, finish: () => outgoing.end(body) };
}

describe('start-up', () => {
  it('--help lists every setting and exits 0', async () => {
    const { code, stdout } = await runTallyToExit({ args: ['--help'] });
    expect(code).toBe(0);
    for (const setting of Object.values(SETTINGS)) expect(stdout).toContain(setting.env);
  });

  it.each([
    ['TALLY_GRPC_PORT', 'abc'],
    ['TALLY_TOKEN_TTL', 'an hour'],
    ['TALLY_KEY_ALGORITHM', 'none'],
  ])('a bad %s stops start-up with a message naming it', async (variable, value) => {
    const { code, stderr, stdout } = await runTallyToExit({ env: { [variable]: value } });
    expect(code).toBe(1);
    expect(stderr).toContain(`${variable}:`);
    expect(stdout).not.toContain('listening');
  });

  it('TALLY_REDIS_URL without a master key stops start-up', async () => {
    const { code, stderr } = await runTallyToExit({ env: { TALLY_REDIS_URL: 'redis://127.0.0.1:1' } });
    expect(code).toBe(1);
    expect(stderr).toContain('TALLY_MASTER_KEY: required with TALLY_REDIS_URL');
  });
});

describe('SIGTERM', () => {
  let tally: TallyProcess | undefined;
  afterEach(async () => {
    if (tally !== undefined) {
      tally.signal('SIGKILL');
      await tally.exited();
    }
    tally = undefined;
  });

  it('drains: health goes NOT_SERVING, calls in flight on both ports complete, and the process exits 0 in time', async () => {
    tally = await startTally({ env: { TALLY_SHUTDOWN_TIMEOUT: '5s' } });
    const client = createGrpcTestClient(tally.grpcAddress);
    const statuses: ServingStatus[] = [];
    const watch = client.serverStream(Health.method.watch, { service: '' });
    watch.on('data', (response: HealthCheckResponse) => statuses.push(response.status));
    watch.on('error', () => {});
    await eventually(async () => expect(statuses).toEqual([ServingStatus.SERVING]), 5_000);

    // Calls begun before the signal: headers sent, message held back.
    const grpcCall = startRawGrpcCall(tally.grpcAddress, '/tally.v1.TokenService/Issue');
    const connectCall = startSlowHttpRequest(`${tally.httpUrl}/tally.v1.TokenService/Issue`, JSON.stringify({ subject: 'in-flight' }));
    // The server has both requests (node answers 100-continue once it has the headers).
    await grpcCall.accepted;
    await connectCall.accepted;

    const signalled = performance.now();
    tally.signal('SIGTERM');
    await eventually(async () => expect(statuses).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]), 5_000);

    grpcCall.send(toBinary(IssueRequestSchema, create(IssueRequestSchema, { subject: 'in-flight' })));
    connectCall.finish();
    expect((await grpcCall.result).status).toBe(grpc.status.OK);
    const answer = await connectCall.result;
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toHaveProperty('tokenId');

    expect(await tally.exited()).toEqual({ code: 0, signal: null });
    expect(performance.now() - signalled).toBeLessThan(5_000);
    expect(tally.logs().some((line) => line.msg === 'stopped')).toBe(true);
    client.close();
    tally = undefined;
  });

  it('cuts a call that does not finish within TALLY_SHUTDOWN_TIMEOUT and still exits', async () => {
    tally = await startTally({ env: { TALLY_SHUTDOWN_TIMEOUT: '1s' } });
    const stuck = startRawGrpcCall(tally.grpcAddress, '/tally.v1.TokenService/Issue');
    stuck.result.catch(() => {});
    await stuck.accepted;
    const signalled = performance.now();
    tally.signal('SIGTERM');
    const exit = await tally.exited();
    expect(exit.code).toBe(1);
    expect(performance.now() - signalled).toBeLessThan(3_000);
    tally = undefined;
  });
});
