// Ways to put bytes in front of a running Tally, each reporting what came
// back as one Outcome, so every hostile case is judged by the same rule.
// None of them is a well-behaved client library: they send what they are given.
import { connect as connectHttp2, constants, type ClientHttp2Session } from 'node:http2';
import { connect as connectTcp } from 'node:net';
import * as grpc from '@grpc/grpc-js';

export type Outcome =
  | { kind: 'grpc'; status: number; body: Buffer }
  | { kind: 'http'; status: number; body: Buffer; grpcStatus?: number }
  /** The server refused the bytes at the protocol level: reset stream, GOAWAY, closed socket. */
  | { kind: 'refused'; detail: string };

/** gRPC statuses that would mean the server failed, not the request. */
const SERVER_FAULTS = new Set([grpc.status.UNKNOWN, grpc.status.INTERNAL, grpc.status.UNAVAILABLE, grpc.status.DATA_LOSS]);

export function isServerFault(outcome: Outcome): boolean {
  if (outcome.kind === 'grpc') return SERVER_FAULTS.has(outcome.status);
  if (outcome.kind === 'http') return outcome.status >= 500 || (outcome.grpcStatus !== undefined && SERVER_FAULTS.has(outcome.grpcStatus));
  return false;
}

export function frame(message: Uint8Array, flags = 0): Buffer {
  const framed = Buffer.alloc(5 + message.length);
  framed[0] = flags;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  return framed;
}

/** gRPC over raw HTTP/2, on one session reopened whenever the server closes it. */
export function createRawGrpcSender(address: string) {
  let session: ClientHttp2Session | undefined;
  const open = () => {
    if (session === undefined || session.closed || session.destroyed) {
      session = connectHttp2(`http://${address}`);
      session.on('error', () => {});
    }
    return session;
  };
  return {
    /**
     * With `stream` (a server-streaming method), a first response message is
     * an answer: the call is going, as it should, and is cancelled there.
     */
    send(path: string, body: Buffer, headers: Record<string, string> = {}, { stream: streaming = false } = {}): Promise<Outcome> {
      return new Promise((resolve) => {
        let stream;
        try {
          stream = open().request({
            [constants.HTTP2_HEADER_METHOD]: 'POST',
            [constants.HTTP2_HEADER_PATH]: path,
            'content-type': 'application/grpc+proto',
            te: 'trailers',
            ...headers,
          });
        } catch (error) {
          resolve({ kind: 'refused', detail: String(error) });
          return;
        }
        const chunks: Buffer[] = [];
        let status: number | undefined;
        stream.on('response', (received) => {
          if (received['grpc-status'] !== undefined) status = Number(received['grpc-status']);
        });
        stream.on('trailers', (trailers) => {
          if (trailers['grpc-status'] !== undefined) status = Number(trailers['grpc-status']);
        });
        stream.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          const received = Buffer.concat(chunks);
          if (streaming && status === undefined && received.length >= 5 && received.length >= 5 + received.readUInt32BE(1)) {
            clearTimeout(timer);
            stream.close(constants.NGHTTP2_CANCEL);
            resolve({ kind: 'grpc', status: 0, body: received });
          }
        });
        stream.on('error', () => {});
        // A server that never answers a finished request would be holding resources for an attacker.
        const timer = setTimeout(() => {
          status = undefined;
          stream.close(constants.NGHTTP2_CANCEL);
          resolve({ kind: 'refused', detail: 'no answer within 5 s' });
        }, 5_000);
        stream.on('close', () => {
          clearTimeout(timer);
          resolve(status === undefined ? { kind: 'refused', detail: `rst ${stream.rstCode}` } : { kind: 'grpc', status, body: Buffer.concat(chunks) });
        });
        stream.end(body);
      });
    },
    close: () => session?.close(),
  };
}

/**
 * An HTTP/1.1 request with the body as given (Connect, gRPC-Web and the plain
 * endpoints). With `stream` (a server-streaming method), the answer is what
 * came first: a stream that is going is cancelled there.
 */
export async function sendHttp(url: string, init: { method?: string; headers?: Record<string, string>; body?: Uint8Array | string; stream?: boolean }): Promise<Outcome> {
  try {
    const response = await fetch(url, { method: init.method ?? 'POST', headers: init.headers, body: init.body });
    const outcome = { kind: 'http' as const, status: response.status, body: init.stream === true ? await firstChunk(response) : Buffer.from(await response.arrayBuffer()) };
    // gRPC-Web answers 200 and puts the status in a header or a trailer frame.
    const grpcStatus = (response.headers.get('content-type') ?? '').startsWith('application/grpc-web') ? grpcWebStatus(outcome, response.headers.get('grpc-status')) : undefined;
    return grpcStatus === undefined ? outcome : { ...outcome, grpcStatus };
  } catch (error) {
    return { kind: 'refused', detail: String((error as Error).cause ?? error) };
  }
}

async function firstChunk(response: Response): Promise<Buffer> {
  const reader = response.body?.getReader();
  if (reader === undefined) return Buffer.alloc(0);
  const { value } = await reader.read();
  await reader.cancel();
  return Buffer.from(value ?? new Uint8Array());
}

/** The grpc-status a gRPC-Web answer carries (in headers, or in its trailer frame). */
export function grpcWebStatus(outcome: Outcome & { kind: 'http' }, headerStatus: string | null): number | undefined {
  if (headerStatus !== null) return Number(headerStatus);
  const match = /grpc-status:\s*(\d+)/i.exec(outcome.body.toString('latin1'));
  return match === null ? undefined : Number(match[1]);
}

/** Raw bytes on a fresh TCP connection; resolves when the server closes it or `withinMs` passes. */
export function sendRawTcp(port: number, bytes: Buffer, withinMs = 500): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const finish = (detail: string) => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve(status === null ? { kind: 'refused', detail } : { kind: 'http', status: Number(status[1]), body: Buffer.concat(chunks) });
    };
    const timer = setTimeout(() => finish('no answer'), withinMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => finish('error'));
    socket.on('close', () => finish('closed'));
    socket.on('connect', () => socket.write(bytes));
  });
}
