// What a client with no credential holds open against a running Tally, for
// the limit tests (test/transport/limits.test.ts, test/hostile/): gRPC calls
// whose message never finishes, HTTP/2 sessions and plain TCP sockets, each
// reporting when the server ends it.
import { connect as connectHttp2, constants, type ClientHttp2Session } from 'node:http2';
import { connect as connectTcp, type Socket } from 'node:net';

/** A gRPC stream whose message announces 60 KB and sends 1 KB of it, then waits: the resource an attacker holds. */
export function unfinishedCall(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}) {
  const stream = session.request({
    [constants.HTTP2_HEADER_METHOD]: 'POST',
    [constants.HTTP2_HEADER_PATH]: path,
    'content-type': 'application/grpc+proto',
    te: 'trailers',
    ...headers,
  });
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(60 * 1024, 1);
  stream.write(Buffer.concat([prefix, Buffer.alloc(1024, 0x41)]));
  let status: number | undefined;
  stream.on('response', (received) => {
    if (received['grpc-status'] !== undefined) status = Number(received['grpc-status']);
  });
  stream.on('trailers', (trailers) => {
    if (trailers['grpc-status'] !== undefined) status = Number(trailers['grpc-status']);
  });
  stream.on('error', () => {});
  const closed = new Promise<{ status: number | undefined; rstCode: number }>((resolve) => {
    stream.on('close', () => resolve({ status, rstCode: stream.rstCode ?? 0 }));
  });
  return { stream, closed };
}

export function openSession(address: string): ClientHttp2Session {
  const session = connectHttp2(`http://${address}`);
  session.on('error', () => {});
  return session;
}

/** A plain TCP connection that sends nothing (or what it is given) and reports when the server closes it. */
export function openSocket(port: number, bytes?: string): { socket: Socket; closedByServer: () => boolean; received: () => string } {
  const socket = connectTcp({ host: '127.0.0.1', port });
  let closed = false;
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  if (bytes !== undefined) socket.on('connect', () => socket.write(bytes));
  return { socket, closedByServer: () => closed, received: () => received };
}

export const within = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))]);
