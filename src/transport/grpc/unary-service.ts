// Runs Connect-style unary handlers (ServiceImpl) on @grpc/grpc-js, so the
// handlers in ../service.ts serve both ports. The grpc-js service definition is
// built from the protobuf-es descriptor: path `/<package.Service>/<Method>`,
// protobuf-es for the bytes. Connect's Code numbers are the gRPC status
// numbers, so a ConnectError becomes a gRPC status as it is.

import * as grpc from '@grpc/grpc-js';
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethodUnary,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';
import { Code, ConnectError, createContextValues, type ContextValues, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import { callDetailsKey, startCallDetails, type CallDetails } from '../call-details.js';
import type { CallLogger } from '../call-log.js';
import { toConnectError } from '../errors.js';
import { cancelAnsweredByTransportKey } from '../abort.js';
import { callerKey } from '../guard.js';
import { peerKey } from '../peer.js';
import { peerOfGrpcCall } from './call-peer.js';
import { checkedCallOf } from './guard-interceptor.js';

type UnaryHandler = (
  request: MessageShape<DescMessage>,
  context: HandlerContext,
) => Promise<MessageInitShape<DescMessage>> | MessageInitShape<DescMessage>;

export interface AdaptedService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface AdaptOptions {
  logCall: CallLogger;
}

/** Unary methods only; server-streaming and bidirectional ones are left to streaming.ts. */
export function adaptUnaryService<Service extends DescService>(
  service: Service,
  handlers: ServiceImpl<Service>,
  options: AdaptOptions,
): AdaptedService {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Uint8Array>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    if (method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming') continue;
    if (method.methodKind !== 'unary') {
      throw new Error(`${service.typeName}/${method.name}: only unary methods can be adapted`);
    }
    const handler = (handlers as Record<string, unknown>)[method.localName] as UnaryHandler;
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: false,
      // Parsing happens in the handler: grpc-js answers INTERNAL for a
      // deserializer that throws, and a malformed request is the caller's fault.
      requestDeserialize: (bytes: Buffer) => bytes,
      requestSerialize: (bytes: Uint8Array) => Buffer.from(bytes),
      responseSerialize: (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      responseDeserialize: (bytes: Buffer) => bytes,
    };
    implementation[method.name] = createUnaryCallHandler(service, method as DescMethodUnary, handler, options);
  }
  return { definition, implementation };
}

const DEADLINE_TOLERANCE_MS = 50;

function createUnaryCallHandler(
  service: DescService,
  method: DescMethodUnary,
  handler: UnaryHandler,
  options: AdaptOptions,
): grpc.handleUnaryCall<Buffer, Uint8Array> {
  const methodName = `${service.typeName}/${method.name}`;
  return (call, callback) => {
    const started = performance.now();
    const details: CallDetails = startCallDetails(call.getPeer(), call.metadata.get('x-request-id')[0] as string | undefined);
    // The guard interceptor has usually checked the caller already (server.ts); the guard in the handlers does it otherwise.
    const checked = checkedCallOf(call.metadata);
    if (checked !== undefined) details.caller = checked.caller.name;
    const peer = checked?.peer ?? peerOfGrpcCall(call, call.metadata);
    const deadline = deadlineOf(call.getDeadline());
    const context = createGrpcHandlerContext({
      service,
      method,
      url: call.getPath(),
      deadline,
      metadata: call.metadata,
      values: createContextValues()
        .set(callDetailsKey, details)
        .set(peerKey, peer)
        .set(callerKey, checked?.caller)
        .set(cancelAnsweredByTransportKey, true),
    });
    let finished = false;
    const onCancelled = () => {
      // A client that enforces its own deadline resets the stream a moment
      // before the deadline passes here, so "nearly expired" counts as expired.
      const expired = deadline !== undefined && deadline - Date.now() <= DEADLINE_TOLERANCE_MS;
      const reason = expired
        ? new ConnectError('the deadline was exceeded', Code.DeadlineExceeded)
        : new ConnectError('the call was cancelled', Code.Canceled);
      context.cancel(reason);
      // Answer (and log) now rather than when the handler is done: its result is no longer wanted.
      finish(reason);
    };
    call.once('cancelled', onCancelled);

    const finish = (error: ConnectError | undefined, response?: Uint8Array) => {
      if (finished) return;
      finished = true;
      call.off('cancelled', onCancelled);
      context.complete();
      options.logCall({
        method: methodName,
        protocol: 'grpc',
        code: error?.code ?? 0,
        durationMs: performance.now() - started,
        details,
        error,
      });
      if (error === undefined) {
        callback(null, response);
      } else {
        callback(Object.assign(new Error(error.rawMessage), { code: error.code as number, details: error.rawMessage }));
      }
    };

    let request: MessageShape<DescMessage>;
    try {
      request = fromBinary(method.input, call.request);
    } catch (cause) {
      finish(new ConnectError('the request message could not be parsed', Code.InvalidArgument, undefined, undefined, cause));
      return;
    }
    Promise.resolve()
      .then(() => handler(request, context))
      .then(
        (result) => finish(undefined, toBinary(method.output, create(method.output, result))),
        (error: unknown) => finish(toConnectError(error)),
      );
  };
}

/** A grpc-js deadline as epoch milliseconds, or undefined when the call has none. */
function deadlineOf(deadline: grpc.Deadline): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? at : undefined;
}

interface GrpcHandlerContext extends HandlerContext {
  /** The call ended early: abort the signal (if anyone took it) with this reason. */
  cancel(reason: ConnectError): void;
  /** The call is over: abort the signal (if anyone took it), as HandlerContext promises. */
  complete(): void;
}

// Reused: the reason a completed call's signal is aborted with. A fresh
// DOMException per call (what abort() without a reason makes) was a few
// percent of a cache-hit Introspect.
const COMPLETED = new ConnectError('the call is complete', Code.Canceled);

/**
 * A HandlerContext for one grpc-js call, cheaper than Connect's
 * createHandlerContext on the hottest path: the abort signal and the header
 * objects are made only when a handler asks for them, and no timer runs for
 * the deadline (grpc-js ends the call itself; 'cancelled' tells us).
 */
function createGrpcHandlerContext(init: {
  service: DescService;
  method: DescMethodUnary;
  url: string;
  deadline: number | undefined;
  metadata: grpc.Metadata;
  values: ContextValues;
}): GrpcHandlerContext {
  let controller: AbortController | undefined;
  let cancelledWith: ConnectError | undefined;
  let requestHeader: Headers | undefined;
  let responseHeader: Headers | undefined;
  let responseTrailer: Headers | undefined;
  return {
    service: init.service,
    method: init.method,
    protocolName: 'grpc',
    requestMethod: 'POST',
    url: init.url,
    values: init.values,
    timeoutMs: () => (init.deadline === undefined ? undefined : Math.max(0, init.deadline - Date.now())),
    get signal() {
      if (controller === undefined) {
        controller = new AbortController();
        if (cancelledWith !== undefined) controller.abort(cancelledWith);
      }
      return controller.signal;
    },
    get requestHeader() {
      return (requestHeader ??= headersFromMetadata(init.metadata));
    },
    get responseHeader() {
      return (responseHeader ??= new Headers());
    },
    get responseTrailer() {
      return (responseTrailer ??= new Headers());
    },
    cancel(reason) {
      cancelledWith ??= reason;
      controller?.abort(reason);
    },
    complete() {
      cancelledWith ??= COMPLETED;
      controller?.abort(COMPLETED);
    },
  };
}

function headersFromMetadata(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(metadata.getMap())) {
    // Binary metadata has no use in the handlers yet; Headers only holds text.
    if (typeof value === 'string') headers.append(key, value);
  }
  return headers;
}
