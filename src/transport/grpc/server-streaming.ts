// Runs Connect-style server-streaming handlers (ServiceImpl) on @grpc/grpc-js,
// beside unary-service.ts, which runs the unary ones: the same handlers then
// serve both ports (connect-node streams them on the HTTP port). Each message
// the handler yields is written as it comes, waiting while the client's flow
// control holds it back; the call ends with the handler, its status mapped by
// errors.ts, and is logged once, like a unary call.
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethodServerStreaming,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';
import { Code, ConnectError, createContextValues, createHandlerContext, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import { callDetailsKey, startCallDetails } from '../call-details.js';
import type { CallLogger } from '../call-log.js';
import { toConnectError } from '../errors.js';
import { callerKey } from '../guard.js';
import { peerKey } from '../peer.js';
import { peerOfGrpcCall } from './call-peer.js';
import { checkedCallOf } from './guard-interceptor.js';
import type { AdaptedService } from './unary-service.js';

type ServerStreamingHandler = (request: MessageShape<DescMessage>, context: HandlerContext) => AsyncIterable<MessageInitShape<DescMessage>>;

/** The service's server-streaming methods (none other), ready for grpc.Server.addService. */
export function adaptServerStreamingMethods<Service extends DescService>(
  service: Service,
  handlers: ServiceImpl<Service>,
  options: { logCall: CallLogger },
): AdaptedService {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Uint8Array>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    if (method.methodKind !== 'server_streaming') continue;
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: true,
      // Parsed in the handler, as unary-service.ts does: a malformed request is INVALID_ARGUMENT, not INTERNAL.
      requestDeserialize: (bytes: Buffer) => bytes,
      requestSerialize: (bytes: Uint8Array) => Buffer.from(bytes),
      responseSerialize: (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      responseDeserialize: (bytes: Buffer) => bytes,
    };
    const handler = (handlers as Record<string, unknown>)[method.localName] as ServerStreamingHandler;
    implementation[method.name] = createServerStreamingCallHandler(service, method as DescMethodServerStreaming, handler, options.logCall);
  }
  return { definition, implementation };
}

function createServerStreamingCallHandler(
  service: DescService,
  method: DescMethodServerStreaming,
  handler: ServerStreamingHandler,
  logCall: CallLogger,
): grpc.handleServerStreamingCall<Buffer, Uint8Array> {
  const methodName = `${service.typeName}/${method.name}`;
  return (call) => {
    const started = performance.now();
    const details = startCallDetails(call.getPeer(), call.metadata.get('x-request-id')[0] as string | undefined);
    // The guard interceptor has checked the caller already (server.ts); the guard in the handlers does it otherwise.
    const checked = checkedCallOf(call.metadata);
    if (checked !== undefined) details.caller = checked.caller.name;
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
      contextValues: createContextValues()
        .set(callDetailsKey, details)
        .set(peerKey, checked?.peer ?? peerOfGrpcCall(call, call.metadata))
        .set(callerKey, checked?.caller),
    });

    let finished = false;
    const finish = (error: ConnectError | undefined) => {
      if (finished) return;
      finished = true;
      context.abort();
      logCall({ method: methodName, protocol: 'grpc', code: error?.code ?? 0, durationMs: performance.now() - started, details, error });
      if (call.cancelled) return;
      if (error === undefined) call.end();
      else call.emit('error', Object.assign(new Error(error.rawMessage), { code: error.code as number, details: error.rawMessage }));
    };
    call.once('cancelled', () => {
      const reason = new ConnectError('the call was cancelled', Code.Canceled);
      clientGone.abort(reason);
      finish(reason);
    });

    let request: MessageShape<DescMessage>;
    try {
      request = fromBinary(method.input, call.request);
    } catch (cause) {
      finish(new ConnectError('the request message could not be parsed', Code.InvalidArgument, undefined, undefined, cause));
      return;
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

/** Text metadata as Headers, for handlers that read them; binary metadata has no use there. */
function textMetadata(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(metadata.getMap())) if (typeof value === 'string') headers.append(key, value);
  return headers;
}
