// An independent gRPC client for tests: plain @grpc/grpc-js with protobuf-es
// serializers, sharing no code with the server's adapter, so a test that
// passes through it proves the wire format rather than our own symmetry.

import * as grpc from '@grpc/grpc-js';
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';

export interface GrpcTestClient {
  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    request: MessageInitShape<I>,
    options?: { deadlineMs?: number; metadata?: Record<string, string> },
  ): Promise<MessageShape<O>>;
  /** Sends raw bytes as the request message, to test what a broken client can send. */
  unaryRaw<O extends DescMessage>(method: DescMethodUnary<DescMessage, O>, bytes: Uint8Array): Promise<MessageShape<O>>;
  serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    request: MessageInitShape<I>,
  ): grpc.ClientReadableStream<MessageShape<O>>;
  close(): void;
}

function pathOf(method: DescMethodUnary | DescMethodServerStreaming): string {
  return `/${method.parent.typeName}/${method.name}`;
}

export function createGrpcTestClient(address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()): GrpcTestClient {
  const client = new grpc.Client(address, credentials, {
    // Larger than the server's limit, so the server's limit is what a test meets.
    'grpc.max_send_message_length': 16 * 1024 * 1024,
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
  });

  const callOptions = (deadlineMs: number | undefined): grpc.CallOptions =>
    deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };

  return {
    unary(method, request, options = {}) {
      const metadata = new grpc.Metadata();
      for (const [key, value] of Object.entries(options.metadata ?? {})) metadata.set(key, value);
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          pathOf(method),
          (message: MessageShape<typeof method.input>) => Buffer.from(toBinary(method.input, message)),
          (bytes: Buffer) => fromBinary(method.output, bytes),
          create(method.input, request),
          metadata,
          callOptions(options.deadlineMs),
          (error, response) => (error ? reject(error) : resolve(response!)),
        );
      });
    },
    unaryRaw(method, bytes) {
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          pathOf(method),
          (raw: Uint8Array) => Buffer.from(raw),
          (response: Buffer) => fromBinary(method.output, response),
          bytes,
          new grpc.Metadata(),
          {},
          (error, response) => (error ? reject(error) : resolve(response!)),
        );
      });
    },
    serverStream(method, request) {
      return client.makeServerStreamRequest(
        pathOf(method),
        (message: MessageShape<typeof method.input>) => Buffer.from(toBinary(method.input, message)),
        (bytes: Buffer) => fromBinary(method.output, bytes),
        create(method.input, request),
      );
    },
    close() {
      client.close();
    },
  };
}

/** The gRPC status of a failed call, for assertions. */
export async function grpcStatusOf(call: Promise<unknown>): Promise<{ code: grpc.status; details: string }> {
  try {
    await call;
  } catch (error) {
    const { code, details } = error as grpc.ServiceError;
    return { code, details };
  }
  throw new Error('the call succeeded but was expected to fail');
}
