// Protected mode against the running server, from a real non-loopback peer:
// a client in a network namespace of our own. With no callers configured,
// Tally serves loopback clients and refuses everyone else (probes excepted),
// on both ports, and its log says how to configure callers.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetworkNamespace, type NetworkNamespace } from '../support/network-namespace.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const BUF = join(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'buf');
const ISSUE = '/tally.v1.TokenService/Issue';

describe('protected mode, seen from another host', () => {
  let namespace: NetworkNamespace;
  const started: TallyProcess[] = [];
  beforeAll(async () => {
    namespace = await createNetworkNamespace();
  });
  afterAll(async () => {
    await Promise.all(started.map((tally) => tally.stop()));
    await namespace?.remove();
  });

  async function tallyOnAllInterfaces(env: Record<string, string> = {}) {
    const tally = await startTally({ env: { TALLY_HOST: '0.0.0.0', ...env } });
    started.push(tally);
    const port = (url: string) => Number(new URL(url.includes('://') ? url : `http://${url}`).port);
    return { tally, grpcPort: port(tally.grpcAddress), httpPort: port(tally.httpUrl) };
  }

  /** HTTP status of a Connect JSON Issue sent from inside the namespace. */
  const issueOverHttp = (httpPort: number) =>
    namespace.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'content-type: application/json', '-d', '{"subject":"alice"}', `http://${namespace.hostAddress}:${httpPort}${ISSUE}`]);

  /** gRPC Issue from inside the namespace with buf curl: its JSON answer or error. */
  const issueOverGrpc = (grpcPort: number) =>
    namespace
      .exec(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '-d', '{"subject":"alice"}', `http://${namespace.hostAddress}:${grpcPort}${ISSUE}`])
      .catch((error: { stderr?: string }) => error.stderr ?? '');

  it('with no callers, refuses a non-loopback client on both ports, still answers its probes, and serves loopback', async () => {
    const { tally, grpcPort, httpPort } = await tallyOnAllInterfaces();
    expect(await issueOverHttp(httpPort)).toBe('401');
    expect(JSON.parse(await issueOverGrpc(grpcPort))).toMatchObject({ code: 'unauthenticated' });
    expect(await namespace.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${namespace.hostAddress}:${httpPort}/healthz`])).toBe('200');
    // The same call from loopback is served.
    const fromLoopback = await fetch(`${tally.httpUrl}${ISSUE}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"subject":"alice"}' });
    expect(fromLoopback.status).toBe(200);
    // The refusals are logged with the peer, and start-up said how to let others in.
    expect(tally.logs().some((line) => typeof line.msg === 'string' && line.msg.includes('TALLY_CALLERS_FILE'))).toBe(true);
    expect(tally.logs().some((line) => line.code === 'unauthenticated' && String(line.peer).includes(namespace.address))).toBe(true);
  });

  it('with TALLY_PROTECTED_MODE=no, serves the non-loopback client', async () => {
    const { grpcPort, httpPort } = await tallyOnAllInterfaces({ TALLY_PROTECTED_MODE: 'no' });
    expect(await issueOverHttp(httpPort)).toBe('200');
    expect(JSON.parse(await issueOverGrpc(grpcPort))).toMatchObject({ token: expect.stringMatching(/^tly_/) });
  });
});
