// The steps every call takes, on the gRPC port, the Connect port and the
// OAuth endpoints alike, written once, in this order:
//
//   1. request id  the caller's x-request-id, when well-formed    begin()
//   2. peer        who is on the other end, as the transport saw  begin()
//   3. auth        the caller, and its permission for this call    Call.authenticate()
//   4. validation  the request's own rules                          serve() / the endpoint
//   5. handler                                                      serve() / the endpoint
//   6. metrics     the call counted by its outcome                  Call.end()
//   7. log         one line                                         Call.end()
//   8. trace       the call's span ends (tracing on, tracing.ts)    Call.end()
//
// The span starts as the handler does (so a Check can join the trace of the
// request it checks), or at the end for a call refused before it; the
// handler runs in it, so store round trips and signatures become children.
//
// Transports differ only in where they find these things: a transport
// begins a call as soon as it knows the peer, authenticates it when the
// credential is in hand (the gRPC port before it reads the message, so a
// client without a credential cannot make Tally buffer bodies), and ends it
// once with the outcome the client got. Refusals end like any other call, so
// they are counted and logged.

import { createContextKey, type Code, type ConnectError, type ContextValues, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type { DescMessage, DescService, MessageShape } from '@bufbuild/protobuf';
import type { Caller } from '../../auth/callers.js';
import type { CallDetails } from './call-details.js';
import { requestIdOf } from './call-details.js';
import type { CallLogger, CallRecord } from './call-log.js';
import { toConnectError } from './errors.js';
import type { Guard } from './guard.js';
import type { PeerInfo } from './peer.js';
import { carrierOf, runInCallSpan, type CallHeaders, type HeaderReader, type Tracing } from '../telemetry/tracing.js';

export interface CallPipelineOptions {
  guard: Guard;
  /** Step 4 for RPCs: throws InvalidArgumentError naming the field at fault (validate.ts). */
  validate: (schema: DescMessage, message: MessageShape<DescMessage>) => void;
  /** Step 6. */
  count: (record: CallRecord) => void;
  /** Step 7. */
  log: CallLogger;
  /** Step 8, when tracing is on. */
  tracing?: Tracing;
}

/** One call, from the moment its transport knows the peer until the client has its answer. */
export interface Call {
  /** `tally.v1.TokenService/Introspect`, `POST /oauth2/introspect`. */
  readonly method: string;
  readonly protocol: string;
  readonly peer: PeerInfo;
  /** What the log line says of the call; handlers add the token id and an inactive token's reason. */
  readonly details: CallDetails;
  /** The caller once authenticated. */
  readonly caller: Caller | undefined;
  /**
   * Step 3: the caller making this call, or a TallyError (UNAUTHENTICATED,
   * PERMISSION_DENIED). Once known, asking again costs nothing.
   */
  authenticate(authorization: string | null | undefined): Caller;
  /**
   * The call's span starts (tracing on; once), joining the caller's trace
   * found in the transport's headers or else in `carrier`.
   */
  startSpan(carrier?: HeaderReader): void;
  /** Runs the handler in the call's span, if it has one. */
  run<T>(handler: () => T): T;
  /**
   * Steps 6 to 8, once: later calls are ignored (a call cancelled, then
   * settled). Plain HTTP routes give the status they wrote.
   */
  end(code: Code | 0, error?: ConnectError, httpStatus?: number): void;
}

export interface CallPipeline {
  /** Steps 1 and 2; `headers` are the call's own (metadata or HTTP headers), where a trace context may be. */
  begin(method: string, protocol: string, peer: PeerInfo, requestId: string | string[] | undefined, headers?: CallHeaders): Call;
  /**
   * Steps 3 to 5 for each RPC of a service, for transports that decode the
   * message first: the call (from the context, see callKey) authenticated
   * unless its transport did already, the message checked, then the handler.
   */
  serve<Service extends DescService>(service: Service, handlers: ServiceImpl<Service>, options?: ServeOptions): ServiceImpl<Service>;
}

export interface ServeOptions {
  /** Where else than the call's own headers the caller's trace context may be (ext_authz: the checked request's headers). */
  traceCarrierOf?: (request: MessageShape<DescMessage>) => HeaderReader;
}

export const callKey = createContextKey<Call | undefined>(undefined, { description: 'tally call' });

/** The call a handler is serving; undefined only for a handler run outside any transport (unit tests). */
export function callOf(values: ContextValues): Call | undefined {
  return values.get(callKey);
}

export function createCallPipeline(options: CallPipelineOptions): CallPipeline {
  const { guard, validate, count, log, tracing } = options;

  class PipelineCall implements Call {
    readonly details: CallDetails;
    caller: Caller | undefined = undefined;
    private readonly started = performance.now();
    private ended = false;

    constructor(
      readonly method: string,
      readonly protocol: string,
      readonly peer: PeerInfo,
      requestId: string | undefined,
      private readonly headers: CallHeaders | undefined,
    ) {
      this.details = requestId === undefined ? { peer: peer.address } : { peer: peer.address, requestId };
    }

    authenticate(authorization: string | null | undefined): Caller {
      if (this.caller !== undefined) return this.caller;
      const caller = guard.check(this.method, authorization, this.peer, (identified) => {
        // Known before the permission is checked, so a refusal is logged with the caller's name.
        this.details.caller = identified.name;
      });
      this.caller = caller;
      return caller;
    }

    startSpan(carrier?: HeaderReader): void {
      if (tracing === undefined || this.details.trace !== undefined) return;
      const carriers: HeaderReader[] = [];
      if (this.headers !== undefined) carriers.push(carrierOf(this.headers));
      if (carrier !== undefined) carriers.push(carrier);
      this.details.trace = tracing.startCall({ method: this.method, protocol: this.protocol, carriers });
    }

    run<T>(handler: () => T): T {
      return runInCallSpan(this.details, handler);
    }

    end(code: Code | 0, error?: ConnectError, httpStatus?: number): void {
      if (this.ended) return;
      this.ended = true;
      const record: CallRecord = { method: this.method, protocol: this.protocol, code, durationMs: performance.now() - this.started, details: this.details, error };
      if (httpStatus !== undefined) record.httpStatus = httpStatus;
      count(record);
      this.startSpan();
      log(record);
      this.details.trace?.end(record);
    }
  }

  return {
    begin(method, protocol, peer, requestId, headers) {
      return new PipelineCall(method, protocol, peer, requestIdOf(requestId), headers);
    },

    serve<Service extends DescService>(service: Service, handlers: ServiceImpl<Service>, serveOptions: ServeOptions = {}): ServiceImpl<Service> {
      const { traceCarrierOf } = serveOptions;
      const served: Record<string, unknown> = {};
      for (const method of service.methods) {
        const handler = (handlers as Record<string, (request: unknown, context: HandlerContext) => unknown>)[method.localName]!;
        // A method that takes a stream of requests has each one checked as the handler reads it.
        const streamed = method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming';
        served[method.localName] = (request: MessageShape<DescMessage>, context: HandlerContext) => {
          const call = callOf(context.values);
          if (call === undefined) throw toConnectError(new Error(`${service.typeName}/${method.name} was served outside a call`));
          // The gRPC port's interceptor authenticated before the message was read; elsewhere it happens here.
          if (call.caller === undefined) {
            // The gRPC adapter carries the credential in the peer, sparing a Headers object per call.
            call.authenticate(call.peer.authorization !== undefined ? call.peer.authorization : context.requestHeader.get('authorization'));
          }
          const checked = streamed
            ? checkedEach(request as unknown as AsyncIterable<MessageShape<DescMessage>>, (each) => validate(method.input, each))
            : (validate(method.input, request), request);
          if (tracing === undefined) return handler(checked, context);
          call.startSpan(streamed ? undefined : traceCarrierOf?.(request));
          return call.run(() => handler(checked, context));
        };
      }
      return served as ServiceImpl<Service>;
    },
  };
}

async function* checkedEach<T>(requests: AsyncIterable<T>, check: (request: T) => void): AsyncGenerator<T> {
  for await (const request of requests) {
    check(request);
    yield request;
  }
}
