// The guard on the gRPC port runs as soon as a call's metadata has arrived,
// before grpc-js reads its message: a call whose credential is bad, missing
// or lacks the permission is answered there, so a client with no credential
// cannot make Tally buffer request bodies (it meets only the connection,
// stream and session-memory bounds of server.ts). The caller found rides
// with the call's metadata to the handler, which does not check it again.
import { constants, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { isGuardedCall } from '../../auth/authorize.js';
import type { Caller } from '../../auth/callers.js';
import { startCallDetails } from '../call-details.js';
import type { CallLogger } from '../call-log.js';
import { toConnectError } from '../errors.js';
import type { Guard } from '../guard.js';
import type { PeerInfo } from '../peer.js';
import { metadataCarrier, type Tracing } from '../tracing.js';
import { peerOfGrpcCall } from './call-peer.js';

export interface CheckedCall {
  peer: PeerInfo;
  caller: Caller;
}

// Keyed by the metadata object, which grpc-js hands unchanged from the
// interceptor to the handler's call; gone with the call.
const checkedCalls = new WeakMap<grpc.Metadata, CheckedCall>();

/** The peer and caller the interceptor established for a call, if it ran. */
export function checkedCallOf(metadata: grpc.Metadata): CheckedCall | undefined {
  return checkedCalls.get(metadata);
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

export function createGuardInterceptor(guard: Guard, logCall: CallLogger, tracing?: Tracing): grpc.ServerInterceptor {
  return (methodDescriptor, call) => {
    const name = methodDescriptor.path.slice(1);
    // Health and reflection need no credential: they pass untouched.
    if (!isGuardedCall(name)) return new grpc.ServerInterceptingCall(call);
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        const started = performance.now();
        const peer = peerOfGrpcCall(call, metadata);
        let identified: string | undefined;
        let caller: Caller;
        try {
          caller = guard.check(name, peer.authorization, peer, (known) => (identified = known.name));
        } catch (thrown) {
          const error = toConnectError(thrown);
          const requestId = metadata.get('x-request-id')[0];
          const details = startCallDetails(peer.address, typeof requestId === 'string' ? requestId : undefined);
          // Known when only the permission was missing: the refusal is logged under the caller's name.
          if (identified !== undefined) details.caller = identified;
          if (tracing !== undefined) details.trace = tracing.startCall({ method: name, protocol: 'grpc', carriers: [metadataCarrier(metadata)] });
          logCall({ method: name, protocol: 'grpc', code: error.code, durationMs: performance.now() - started, details, error });
          // The message is never read: the stream ends here with the refusal.
          call.sendStatus({ code: error.code as number, details: error.rawMessage });
          stopRequest(call);
          return;
        }
        checkedCalls.set(metadata, { peer, caller });
        next(metadata);
      })
      .build();
    const responder = new grpc.ResponderBuilder().withStart((next) => next(listener)).build();
    return new grpc.ServerInterceptingCall(call, responder);
  };
}
