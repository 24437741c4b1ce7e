// gRPC at the HTTP/2 level, for what a well-behaved client library will not
// do: leave a deadline to the server alone, or send a request's headers and
// hold back its message (a call in flight while the server drains).

import { connect, constants, type ClientHttp2Session } from 'node:http2';

export interface RawGrpcCall {
  /** Sends the message (length-prefixed) and ends the request. */
  send(message: Uint8Array): void;
  /**
   * Resolves once the server has the request's headers: after the stream's
   * HEADERS frame went out, a PING is answered only after it was handled,
   * since one HTTP/2 connection's frames are handled in order.
   */
  accepted: Promise<void>;
  /** Resolves with grpc-status and the response message bytes once the server ends the stream. */
  result: Promise<{ status: number; message: string; body: Buffer }>;
}

export function startRawGrpcCall(address: string, path: string, headers: Record<string, string> = {}): RawGrpcCall & { session: ClientHttp2Session } {
  const session = connect(`http://${address}`);
  session.on('error', () => {});
  const stream = session.request({
    [constants.HTTP2_HEADER_METHOD]: 'POST',
    [constants.HTTP2_HEADER_PATH]: path,
    'content-type': 'application/grpc+proto',
    te: 'trailers',
    ...headers,
  });
  const accepted = new Promise<void>((resolve, reject) => {
    stream.once('ready', () => {
      session.ping((error) => (error === null ? resolve() : reject(error)));
    });
  });
  accepted.catch(() => {});
  const chunks: Buffer[] = [];
  let responseHeaders: Record<string, unknown> = {};
  stream.on('response', (received) => {
    responseHeaders = received;
  });
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  const result = new Promise<{ status: number; message: string; body: Buffer }>((resolve, reject) => {
    stream.on('trailers', (trailers) => {
      responseHeaders = { ...responseHeaders, ...trailers };
    });
    stream.on('close', () => {
      session.close();
      const status = responseHeaders['grpc-status'];
      if (status === undefined) {
        reject(new Error(`the stream closed without a grpc-status (rst code ${stream.rstCode})`));
        return;
      }
      const body = Buffer.concat(chunks);
      resolve({ status: Number(status), message: String(responseHeaders['grpc-message'] ?? ''), body: body.subarray(5) });
    });
    stream.on('error', reject);
  });
  return {
    session,
    accepted,
    send(message) {
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      stream.end(frame);
    },
    result,
  };
}
