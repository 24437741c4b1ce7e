// The PeerInfo of a grpc-js call: address, TLS identities, the :authority
// the client named and the authorization metadata. What belongs to the
// connection (address, loopback, the verified certificate's identities) is
// worked out once per HTTP/2 session and shared by every call on it; only
// the :authority and the credential are read per call.
import type { Http2Session } from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import { hostOfGrpcPeer, isLoopbackAddress, verifiedIdentities, type PeerInfo } from '../call/peer.js';

type GrpcCallView = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getPeer' | 'getAuthContext' | 'getHost'>;
type ConnectionPeer = Pick<PeerInfo, 'address' | 'loopback' | 'tlsIdentities'>;

const peersOfSessions = new WeakMap<Http2Session, ConnectionPeer>();

function connectionPeerOf(call: GrpcCallView): ConnectionPeer {
  const address = call.getPeer();
  const authContext = call.getAuthContext();
  // grpc-js only completes a TLS handshake with a client certificate it verified
  // against the configured CA (checkClientCertificate), so a certificate here is trusted.
  const certificate = authContext?.transportSecurityType === 'ssl' ? authContext.sslPeerCertificate : undefined;
  return {
    address,
    loopback: isLoopbackAddress(hostOfGrpcPeer(address)),
    tlsIdentities: verifiedIdentities(certificate, certificate !== undefined),
  };
}

/**
 * The HTTP/2 session a call came on. grpc-js does not offer it, so this reads
 * the stream its base call keeps (the interceptor's call is that base call);
 * were it missing, the peer is simply worked out for the call alone.
 */
function sessionOf(call: GrpcCallView): Http2Session | undefined {
  return (call as unknown as { stream?: { session?: Http2Session } }).stream?.session;
}

export function peerOfGrpcCall(call: GrpcCallView, metadata: grpc.Metadata): PeerInfo {
  const session = sessionOf(call);
  let connection = session === undefined ? undefined : peersOfSessions.get(session);
  if (connection === undefined) {
    connection = connectionPeerOf(call);
    if (session !== undefined) peersOfSessions.set(session, connection);
  }
  const authorization = metadata.get('authorization')[0];
  return {
    address: connection.address,
    loopback: connection.loopback,
    tlsIdentities: connection.tlsIdentities,
    authorization: typeof authorization === 'string' ? authorization : null,
    host: call.getHost(),
  };
}
