// Runs Connect-style server-streaming and bidirectional handlers (ServiceImpl)
// on @grpc/grpc-js, beside unary-service.ts, which runs the unary ones: the
// same handlers serve both ports (connect-node streams them on the HTTP port).
// Request messages of a bidirectional call reach the handler as an async
// iterable, read from the client only as fast as the handler takes them. Each
// message the handler yields is written as it comes, waiting while the
// client's flow control holds it back; the call ends with the handler, its
// status mapped by errors.ts, and is logged once, like a unary call.
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethodBiDiStreaming,
  type DescMethodServerStreaming,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';
import { Code, ConnectError, createContextValues, createHandlerContext, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import { createWritableIterable } from '@connectrpc/connect/protocol';
import { toConnectError } from '../call/errors.js';
import { callKey, type CallPipeline } from '../call/pipeline.js';
import { peerOfGrpcCall } from './call-peer.js';
import { callOfMetadata } from './guard-interceptor.js';
import type { AdaptedService } from './unary-service.js';

type StreamingHandler = (
  request: MessageShape<DescMessage> | AsyncIterable<MessageShape<DescMessage>>,
  context: HandlerContext,
) => AsyncIterable<MessageInitShape<DescMessage>>;
type StreamingMethod = DescMethodServerStreaming | DescMethodBiDiStreaming;

const PARSE_FAILURE = 'the request message could not be parsed';

/** The service's server-streaming and bidirectional methods (none other), ready for grpc.Server.addService. */
export function adaptStreamingMethods<Service extends DescService>(
  service: Service,
  handlers: ServiceImpl<Service>,
  options: { pipeline: CallPipeline },
): AdaptedService {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Uint8Array>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    if (method.methodKind !== 'server_streaming' && method.methodKind !== 'bidi_streaming') continue;
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === 'bidi_streaming',
      responseStream: true,
      // Parsed in the handler, as unary-service.ts does: a malformed request is INVALID_ARGUMENT, not INTERNAL.
      requestDeserialize: (bytes: Buffer) => bytes,
      requestSerialize: (bytes: Uint8Array) => Buffer.from(bytes),
      responseSerialize: (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      responseDeserialize: (bytes: Buffer) => bytes,
    };
    const handler = (handlers as Record<string, unknown>)[method.localName] as StreamingHandler;
    implementation[method.name] = createStreamingCallHandler(service, method as StreamingMethod, handler, options.pipeline);
  }
  return { definition, implementation };
}

function createStreamingCallHandler(
  service: DescService,
  method: StreamingMethod,
  handler: StreamingHandler,
  pipeline: CallPipeline,
): grpc.handleServerStreamingCall<Buffer, Uint8Array> & grpc.handleBidiStreamingCall<Buffer, Uint8Array> {
  const methodName = `${service.typeName}/${method.name}`;
  return (call: grpc.ServerWritableStream<Buffer, Uint8Array> | grpc.ServerDuplexStream<Buffer, Uint8Array>) => {
    // Begun (and authenticated) by the guard interceptor before a message was read; begun here otherwise (pipeline.ts).
    const tallyCall =
      callOfMetadata(call.metadata) ??
      pipeline.begin(methodName, 'grpc', peerOfGrpcCall(call, call.metadata), call.metadata.get('x-request-id')[0] as string | undefined, call.metadata);
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
    const clientGone = new AbortController();
    const context = createHandlerContext({
      service,
      method,
      protocolName: 'grpc',
      requestMethod: 'POST',
      url: call.getPath(),
      // grpc-js ends the call at its deadline itself ('cancelled'); this only tells the handler.
      timeoutMs: Number.isFinite(deadlineMs) ? Math.max(0, deadlineMs - Date.now()) : undefined,
      requestSignal: clientGone.signal,
      requestHeader: textMetadata(call.metadata),
      contextValues: createContextValues().set(callKey, tallyCall),
    });

    let finished = false;
    const finish = (error: ConnectError | undefined) => {
      if (finished) return;
      finished = true;
      context.abort();
      tallyCall.end(error?.code ?? 0, error);
      if (call.cancelled) return;
      if (error === undefined) call.end();
      else call.emit('error', Object.assign(new Error(error.rawMessage), { code: error.code as number, details: error.rawMessage }));
    };
    call.once('cancelled', () => {
      const reason = new ConnectError('the call was cancelled', Code.Canceled);
      clientGone.abort(reason);
      finish(reason);
    });

    let request: MessageShape<DescMessage> | AsyncIterable<MessageShape<DescMessage>>;
    if (method.methodKind === 'bidi_streaming') {
      request = requestsOf(call as grpc.ServerDuplexStream<Buffer, Uint8Array>, method, finish);
    } else {
      try {
        request = fromBinary(method.input, (call as grpc.ServerWritableStream<Buffer, Uint8Array>).request);
      } catch (cause) {
        finish(new ConnectError(PARSE_FAILURE, Code.InvalidArgument, undefined, undefined, cause));
        return;
      }
    }
    void (async () => {
      try {
        for await (const message of handler(request, context)) {
          if (finished) break;
          // Held back by flow control: wait, unless the call ends first.
          if (!call.write(toBinary(method.output, create(method.output, message)))) {
            await once(call, 'drain', { signal: context.signal }).catch(() => {});
          }
        }
        finish(undefined);
      } catch (error) {
        finish(toConnectError(error));
      }
    })();
  };
}

/**
 * A bidirectional call's request messages, as the handler reads them: the
 * client is read no faster than the handler takes them (grpc-js pauses the
 * stream, and HTTP/2 flow control holds the client back). A message that
 * does not parse ends the call with INVALID_ARGUMENT.
 */
function requestsOf(
  call: grpc.ServerDuplexStream<Buffer, Uint8Array>,
  method: DescMethodBiDiStreaming,
  finish: (error: ConnectError | undefined) => void,
): AsyncIterable<MessageShape<DescMessage>> {
  const requests = createWritableIterable<MessageShape<DescMessage>>();
  call.on('data', (bytes: Buffer) => {
    let message: MessageShape<DescMessage>;
    try {
      message = fromBinary(method.input, bytes);
    } catch (cause) {
      requests.close();
      finish(new ConnectError(PARSE_FAILURE, Code.InvalidArgument, undefined, undefined, cause));
      return;
    }
    call.pause();
    requests.write(message).then(
      () => call.resume(),
      // Closed: the call is over, nothing more is read.
      () => {},
    );
  });
  call.once('end', () => requests.close());
  call.once('cancelled', () => requests.close());
  return requests;
}

/** Text metadata as Headers, for handlers that read them; binary metadata has no use there. */
function textMetadata(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(metadata.getMap())) if (typeof value === 'string') headers.append(key, value);
  return headers;
}
