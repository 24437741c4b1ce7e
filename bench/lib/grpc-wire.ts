// The gRPC wire format by hand, so the bench can check the very bytes it gives
// the load generator instead of trusting a client library to build the same ones.
import { connect, constants } from 'node:http2';

const frameHeaderLength = 5;

/** One uncompressed gRPC message: flag 0, 4-byte big-endian length, the protobuf bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(frameHeaderLength + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, frameHeaderLength);
  return frame;
}

/** The messages in a response body; throws on a compressed or truncated frame. */
export function parseGrpcFrames(body: Buffer): Buffer[] {
  const messages: Buffer[] = [];
  let offset = 0;
  while (offset < body.length) {
    if (body.length - offset < frameHeaderLength) throw new Error('truncated gRPC frame header');
    const flag = body.readUInt8(offset);
    const length = body.readUInt32BE(offset + 1);
    if (flag !== 0) throw new Error(`unexpected gRPC frame flag ${flag} (compressed?)`);
    const end = offset + frameHeaderLength + length;
    if (end > body.length) throw new Error('truncated gRPC message');
    messages.push(body.subarray(offset + frameHeaderLength, end));
    offset = end;
  }
  return messages;
}

/** The same request headers the load generator sends. */
export const grpcRequestHeaders: Readonly<Record<string, string>> = {
  'content-type': 'application/grpc',
  te: 'trailers',
};

export interface RawGrpcResponse {
  readonly httpStatus: number;
  /** From the trailers, or from the headers of a trailers-only response. */
  readonly grpcStatus: string | undefined;
  readonly grpcMessage: string | undefined;
  /** The response body exactly as received: the frames, headers excluded. */
  readonly body: Buffer;
}

/** Posts an already framed body over h2c and returns what came back, untouched. */
export function postGrpcBody(origin: string, path: string, body: Buffer, timeoutMilliseconds = 5_000): Promise<RawGrpcResponse> {
  return new Promise((resolve, reject) => {
    const session = connect(origin);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no gRPC answer from ${origin}${path} within ${timeoutMilliseconds} ms`));
    }, timeoutMilliseconds);
    session.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    const stream = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: path,
      ...grpcRequestHeaders,
    });
    let httpStatus = 0;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    const chunks: Buffer[] = [];
    const readStatus = (headers: Record<string, unknown>): void => {
      if (typeof headers['grpc-status'] === 'string') grpcStatus = headers['grpc-status'];
      if (typeof headers['grpc-message'] === 'string') grpcMessage = decodeURIComponent(headers['grpc-message']);
    };
    stream.on('response', (headers) => {
      httpStatus = Number(headers[constants.HTTP2_HEADER_STATUS]);
      readStatus(headers);
    });
    stream.on('trailers', readStatus);
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('error', (error) => {
      clearTimeout(timer);
      session.close();
      reject(error);
    });
    stream.once('end', () => {
      clearTimeout(timer);
      session.close();
      resolve({ httpStatus, grpcStatus, grpcMessage, body: Buffer.concat(chunks) });
    });
    stream.end(body);
  });
}
