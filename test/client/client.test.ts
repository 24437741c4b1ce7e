// The exported client against running servers: every RPC with an API key;
// retries on UNAVAILABLE for the idempotent calls only, proven by a server
// that comes up only after the first attempt failed; and its deadline.

import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, ConnectError, createTallyClient, TokenFormat } from '../../src/client/index.js';
import { startInProcessTally, type InProcessTally } from '../support/in-process-tally.js';
import { writeCallersFile } from '../support/keyed-callers.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

/** A port nothing listens on, for now. */
async function freePort(): Promise<number> {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Tally as main.ts builds it (memory store, no callers), with its gRPC port on the given port. */
async function startGrpcServer(port: number): Promise<InProcessTally> {
  return startInProcessTally({ env: { TALLY_GRPC_PORT: String(port) } });
}

describe('createTallyClient against the real process', () => {
  const callers = writeCallersFile([{ name: 'billing', permissions: ['issue', 'introspect', 'revoke', 'keys'] }]);
  let tally: TallyProcess;

  beforeAll(async () => {
    tally = await startTally({ env: { TALLY_CALLERS_FILE: callers.path } });
  });
  afterAll(async () => {
    await tally?.stop();
  });

  it('issues, introspects, revokes and lists keys with its API key', async () => {
    const client = createTallyClient({ baseUrl: `http://${tally.grpcAddress}`, apiKey: callers.keys.billing });
    const issued = await client.issue({ subject: 'alice', scopes: ['read'], format: TokenFormat.JWT });
    expect((await client.introspect({ token: issued.token })).subject).toBe('alice');
    await client.revoke({ target: { case: 'subject', value: 'alice' } });
    expect((await client.introspect({ token: issued.token })).active).toBe(false);
    expect((await client.listKeys({})).keys.length).toBeGreaterThan(0);
  });

  it('is refused without a key, and does not retry a refusal', async () => {
    const retries: string[] = [];
    const client = createTallyClient({ baseUrl: `http://${tally.grpcAddress}`, retry: { onRetry: ({ method }) => void retries.push(method) } });
    const error = await client.listKeys({}).catch((thrown: unknown) => ConnectError.from(thrown));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    expect(retries).toEqual([]);
  });
});

describe('createTallyClient retries', () => {
  let server: InProcessTally | undefined;
  let silent: TcpServer | undefined;
  const silentSockets = new Set<Socket>();

  afterAll(async () => {
    await server?.close();
    for (const socket of silentSockets) socket.destroy();
    await new Promise((resolve) => (silent === undefined ? resolve(undefined) : silent.close(resolve)));
  });

  it('retries Introspect on UNAVAILABLE until the server is up, then answers', async () => {
    const port = await freePort();
    const attempts: number[] = [];
    const client = createTallyClient({
      baseUrl: `http://127.0.0.1:${port}`,
      timeoutMs: 10_000,
      retry: {
        maxAttempts: 10,
        onRetry: async ({ attempt, error }) => {
          expect(error.code).toBe(Code.Unavailable);
          attempts.push(attempt);
          // The server comes up only once the first attempt has failed.
          if (attempt === 1) server = await startGrpcServer(port);
        },
      },
    });
    const answer = await client.introspect({ token: 'tly_unknown' });
    expect(answer.active).toBe(false);
    expect(attempts[0]).toBe(1);
  });

  it.each([
    ['Issue', (client: ReturnType<typeof createTallyClient>) => client.issue({ subject: 'alice' })],
    ['RotateKeys', (client: ReturnType<typeof createTallyClient>) => client.rotateKeys({})],
  ])('never retries %s, which is not idempotent', async (_name, call) => {
    const port = await freePort();
    const retries: string[] = [];
    const client = createTallyClient({ baseUrl: `http://127.0.0.1:${port}`, retry: { onRetry: ({ method }) => void retries.push(method) } });
    const error = ConnectError.from(await call(client).catch((thrown: unknown) => thrown));
    expect(error.code).toBe(Code.Unavailable);
    expect(retries).toEqual([]);
  });

  it('gives up at its deadline when the server never answers', async () => {
    // Accepts connections and says nothing: neither refused nor answered.
    silent = createTcpServer((socket) => void silentSockets.add(socket));
    await new Promise<void>((resolve) => silent!.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const client = createTallyClient({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 300 });
    const started = performance.now();
    const error = ConnectError.from(await client.introspect({ token: 'tly_x' }).catch((thrown: unknown) => thrown));
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
