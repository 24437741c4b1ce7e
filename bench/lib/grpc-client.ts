// Unary calls through @grpc/grpc-js with protobuf-es messages, for the calls the
// bench makes outside h2load: minting tokens, and the Revoke row, which times
// sequential calls over one connection as a service holding a client would.
import { fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { Client, Metadata, credentials } from '@grpc/grpc-js';

export interface UnaryClient {
  call<Request extends DescMessage, Response extends DescMessage>(
    path: string,
    requestSchema: Request,
    responseSchema: Response,
    request: MessageShape<Request>,
    timeoutMilliseconds?: number,
  ): Promise<MessageShape<Response>>;
  close(): void;
}

/** One channel, reused for every call until close(). */
export function createUnaryClient(address: string): UnaryClient {
  const client = new Client(address, credentials.createInsecure());
  return {
    call(path, requestSchema, responseSchema, request, timeoutMilliseconds = 5_000) {
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          path,
          (message: typeof request) => Buffer.from(toBinary(requestSchema, message)),
          (bytes: Buffer) => fromBinary(responseSchema, bytes),
          request,
          new Metadata(),
          { deadline: Date.now() + timeoutMilliseconds },
          (error, response) => (error || response === undefined ? reject(error ?? new Error(`${path}: empty answer`)) : resolve(response)),
        );
      });
    },
    close: () => client.close(),
  };
}

/** A single call on a channel of its own. */
export async function callUnary<Request extends DescMessage, Response extends DescMessage>(
  address: string,
  path: string,
  requestSchema: Request,
  responseSchema: Response,
  request: MessageShape<Request>,
  timeoutMilliseconds = 5_000,
): Promise<MessageShape<Response>> {
  const client = createUnaryClient(address);
  try {
    return await client.call(path, requestSchema, responseSchema, request, timeoutMilliseconds);
  } finally {
    client.close();
  }
}
