// A unary call through @grpc/grpc-js with protobuf-es messages, for the few calls
// the bench makes outside the load (minting tokens). Not on the measured path.
import { fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { Client, Metadata, credentials } from '@grpc/grpc-js';

export async function callUnary<Request extends DescMessage, Response extends DescMessage>(
  address: string,
  path: string,
  requestSchema: Request,
  responseSchema: Response,
  request: MessageShape<Request>,
  timeoutMilliseconds = 5_000,
): Promise<MessageShape<Response>> {
  const client = new Client(address, credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        path,
        (message: MessageShape<Request>) => Buffer.from(toBinary(requestSchema, message)),
        (bytes: Buffer) => fromBinary(responseSchema, bytes),
        request,
        new Metadata(),
        { deadline: Date.now() + timeoutMilliseconds },
        (error, response) => (error || response === undefined ? reject(error ?? new Error(`${path}: empty answer`)) : resolve(response)),
      );
    });
  } finally {
    client.close();
  }
}
