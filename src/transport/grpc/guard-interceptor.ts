// Where a call on the gRPC port begins (pipeline.ts, steps 1 to 3): as soon
// as its metadata has arrived, before grpc-js reads its message. A call whose
// credential is bad, missing or lacks the permission ends there, so a client
// with no credential cannot make Tally buffer request bodies (it meets only
// the connection, stream and session-memory bounds of server.ts). The call
// rides with its metadata to the handler (unary-service.ts).
import { constants, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { isGuardedCall } from '../../auth/authorize.js';
import { toConnectError } from '../call/errors.js';
import type { Call, CallPipeline } from '../call/pipeline.js';
import { peerOfGrpcCall } from './call-peer.js';

// Carried on the metadata object, which grpc-js hands unchanged from the
// interceptor to the handler's call, and gone with it. A property rather
// than a WeakMap: a WeakMap entry per call made every young-generation
// collection walk them all.
const CALL = Symbol('tally call');
type CarryingMetadata = grpc.Metadata & { [CALL]?: Call };

/** The call the interceptor began for this metadata, authenticated; undefined if it did not run. */
export function callOfMetadata(metadata: grpc.Metadata): Call | undefined {
  return (metadata as CarryingMetadata)[CALL];
}

/**
 * After a trailers-only refusal the request side stays open, and a client
 * could keep each refused stream (and its flow-control window) held. RFC 9113
 * §8.1 lets a server that has answered ask the client to stop sending with
 * RST_STREAM(NO_ERROR). grpc-js gives interceptors no handle on the HTTP/2
 * stream, so this takes the one its base call keeps (the guard interceptor is
 * the first, so its call is that base call); were it ever missing, the bounds
 * on streams and session memory still hold.
 */
function stopRequest(call: grpc.ServerInterceptingCallInterface): void {
  const stream = (call as unknown as { stream?: Partial<ServerHttp2Stream> }).stream;
  if (typeof stream?.close === 'function' && stream.closed === false) stream.close(constants.NGHTTP2_NO_ERROR);
}

export function createGuardInterceptor(pipeline: CallPipeline): grpc.ServerInterceptor {
  return (methodDescriptor, call) => {
    const name = methodDescriptor.path.slice(1);
    // Health and reflection need no credential: they pass untouched.
    if (!isGuardedCall(name)) return new grpc.ServerInterceptingCall(call);
    // Plain objects, as grpc-js's builders would make them, without the builders' garbage per call.
    const listener: grpc.ServerListener = {
      onReceiveMetadata(metadata, next) {
        const peer = peerOfGrpcCall(call, metadata);
        const requestId = metadata.get('x-request-id')[0];
        const tallyCall = pipeline.begin(name, 'grpc', peer, typeof requestId === 'string' ? requestId : undefined, metadata);
        try {
          tallyCall.authenticate(peer.authorization);
        } catch (thrown) {
          const error = toConnectError(thrown);
          tallyCall.end(error.code, error);
          // The message is never read: the stream ends here with the refusal.
          call.sendStatus({ code: error.code as number, details: error.rawMessage });
          stopRequest(call);
          return;
        }
        (metadata as CarryingMetadata)[CALL] = tallyCall;
        next(metadata);
      },
    };
    return new grpc.ServerInterceptingCall(call, { start: (next) => next(listener) });
  };
}
