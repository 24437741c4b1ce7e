// Runs Connect-style unary handlers (ServiceImpl) on @grpc/grpc-js, so the
// handlers in ../service.ts serve both ports. The call itself is begun by
// the guard interceptor and ended here (pipeline.ts). The grpc-js service definition is
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
import { Code, ConnectError, type ContextKey, type ContextValues, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import { isPromise } from '../../core/awaitable.js';
import { toConnectError } from '../call/errors.js';
import { cancelAnsweredByTransportKey } from '../call/abort.js';
import { callKey, type Call, type CallPipeline } from '../call/pipeline.js';
import { peerOfGrpcCall } from './call-peer.js';
import { callOfMetadata } from './guard-interceptor.js';

type UnaryHandler = (
  request: MessageShape<DescMessage>,
  context: HandlerContext,
) => Promise<MessageInitShape<DescMessage>> | MessageInitShape<DescMessage>;

export interface AdaptedService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface AdaptOptions {
  /** Begins the calls the guard interceptor did not (pipeline.ts). */
  pipeline: CallPipeline;
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

// Answers a handler hands out again unchanged (it freezes them: an active
// introspection's answer, kept with its token record) are encoded once.
const encodedAnswers = new WeakMap<object, Uint8Array>();

function encode(schema: DescMessage, answer: MessageInitShape<DescMessage>): Uint8Array {
  if (!Object.isFrozen(answer)) return toBinary(schema, create(schema, answer));
  let bytes = encodedAnswers.get(answer);
  if (bytes === undefined) {
    bytes = toBinary(schema, create(schema, answer));
    encodedAnswers.set(answer, bytes);
  }
  return bytes;
}


function createUnaryCallHandler(
  service: DescService,
  method: DescMethodUnary,
  handler: UnaryHandler,
  options: AdaptOptions,
): grpc.handleUnaryCall<Buffer, Uint8Array> {
  const methodName = `${service.typeName}/${method.name}`;
  return (grpcCall, callback) => {
    // Begun (and authenticated) by the interceptor before the message was read; begun here otherwise.
    const call =
      callOfMetadata(grpcCall.metadata) ??
      options.pipeline.begin(
        methodName,
        'grpc',
        peerOfGrpcCall(grpcCall, grpcCall.metadata),
        grpcCall.metadata.get('x-request-id')[0] as string | undefined,
        grpcCall.metadata,
      );
    const deadline = deadlineOf(grpcCall.getDeadline());
    const context = new GrpcHandlerContextImpl(service, method, grpcCall.getPath(), deadline, grpcCall.metadata, new CallValues(call));

    let result: MessageInitShape<DescMessage> | Promise<MessageInitShape<DescMessage>>;
    try {
      let request: MessageShape<DescMessage>;
      try {
        request = fromBinary(method.input, grpcCall.request);
      } catch (cause) {
        throw new ConnectError('the request message could not be parsed', Code.InvalidArgument, undefined, undefined, cause);
      }
      result = handler(request, context);
    } catch (error) {
      finishCall(context, call, callback, toConnectError(error));
      return;
    }
    // A handler that can answer from memory answers at once: no promise, no
    // microtask, no listener for a cancellation that cannot come first, and
    // no closure made for any of them.
    if (!isPromise(result)) {
      answerCall(context, call, callback, method.output, result);
      return;
    }
    let finished = false;
    const onCancelled = () => {
      if (finished) return;
      finished = true;
      // A client that enforces its own deadline resets the stream a moment
      // before the deadline passes here, so "nearly expired" counts as expired.
      const expired = deadline !== undefined && deadline - Date.now() <= DEADLINE_TOLERANCE_MS;
      const reason = expired
        ? new ConnectError('the deadline was exceeded', Code.DeadlineExceeded)
        : new ConnectError('the call was cancelled', Code.Canceled);
      context.cancel(reason);
      // Answer (and log) now rather than when the handler is done: its result is no longer wanted.
      finishCall(context, call, callback, reason);
    };
    grpcCall.once('cancelled', onCancelled);
    const settled = () => {
      if (finished) return false;
      finished = true;
      grpcCall.off('cancelled', onCancelled);
      return true;
    };
    result.then(
      (value) => settled() && answerCall(context, call, callback, method.output, value),
      (error: unknown) => settled() && finishCall(context, call, callback, toConnectError(error)),
    );
  };
}

/** Encodes the handler's answer and ends the call with it (or with the encoding's failure). */
function answerCall(
  context: GrpcHandlerContext,
  call: Call,
  callback: grpc.sendUnaryData<Uint8Array>,
  schema: DescMessage,
  result: MessageInitShape<DescMessage>,
): void {
  let bytes: Uint8Array;
  try {
    bytes = encode(schema, result);
  } catch (error) {
    finishCall(context, call, callback, toConnectError(error));
    return;
  }
  finishCall(context, call, callback, undefined, bytes);
}

/** Ends the call: its context, its steps 6 to 8 (pipeline.ts), then the answer to grpc-js. */
function finishCall(
  context: GrpcHandlerContext,
  call: Call,
  callback: grpc.sendUnaryData<Uint8Array>,
  error: ConnectError | undefined,
  response?: Uint8Array,
): void {
  context.complete();
  call.end(error?.code ?? 0, error);
  if (error === undefined) callback(null, response);
  else callback(Object.assign(new Error(error.rawMessage), { code: error.code as number, details: error.rawMessage }));
}

/**
 * The context values of one call on the gRPC port: the call, and that the
 * transport answers a cancelled call itself. A class, so a call makes one
 * object rather than Connect's literal with three methods of its own.
 */
class CallValues implements ContextValues {
  [key: symbol]: unknown;

  constructor(call: Call) {
    this[callKey.id] = call;
    this[cancelAnsweredByTransportKey.id] = true;
  }

  get<T>(key: ContextKey<T>): T {
    return key.id in this ? (this[key.id] as T) : key.defaultValue;
  }

  set<T>(key: ContextKey<T>, value: T): this {
    this[key.id] = value;
    return this;
  }

  delete(key: ContextKey<unknown>): this {
    delete this[key.id];
    return this;
  }
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
 * objects are made only when a handler asks for them, no timer runs for the
 * deadline (grpc-js ends the call itself; 'cancelled' tells us), and the
 * accessors live on the prototype rather than on each call's object.
 */
class GrpcHandlerContextImpl implements GrpcHandlerContext {
  readonly protocolName = 'grpc';
  readonly requestMethod = 'POST';
  private controller: AbortController | undefined = undefined;
  private cancelledWith: ConnectError | undefined = undefined;
  private requestHeaders: Headers | undefined = undefined;
  private responseHeaders: Headers | undefined = undefined;
  private responseTrailers: Headers | undefined = undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethodUnary,
    readonly url: string,
    private readonly deadline: number | undefined,
    private readonly metadata: grpc.Metadata,
    readonly values: ContextValues,
  ) {}

  timeoutMs(): number | undefined {
    return this.deadline === undefined ? undefined : Math.max(0, this.deadline - Date.now());
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.cancelledWith !== undefined) this.controller.abort(this.cancelledWith);
    }
    return this.controller.signal;
  }

  get requestHeader(): Headers {
    return (this.requestHeaders ??= headersFromMetadata(this.metadata));
  }

  get responseHeader(): Headers {
    return (this.responseHeaders ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.responseTrailers ??= new Headers());
  }

  cancel(reason: ConnectError): void {
    this.cancelledWith ??= reason;
    this.controller?.abort(reason);
  }

  complete(): void {
    this.cancelledWith ??= COMPLETED;
    this.controller?.abort(COMPLETED);
  }
}

function headersFromMetadata(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(metadata.getMap())) {
    // Binary metadata has no use in the handlers yet; Headers only holds text.
    if (typeof value === 'string') headers.append(key, value);
  }
  return headers;
}
