// The PeerInfo of a grpc-js call, from what both the handler's call and an
// interceptor's call offer: address, TLS state, the :authority the client
// named and the authorization metadata.
import type * as grpc from '@grpc/grpc-js';
import { hostOfGrpcPeer, isLoopbackAddress, verifiedIdentities, type PeerInfo } from '../peer.js';

type GrpcCallView = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getPeer' | 'getAuthContext' | 'getHost'>;

export function peerOfGrpcCall(call: GrpcCallView, metadata: grpc.Metadata): PeerInfo {
  const address = call.getPeer();
  const authContext = call.getAuthContext();
  // grpc-js only completes a TLS handshake with a client certificate it verified
  // against the configured CA (checkClientCertificate), so a certificate here is trusted.
  const certificate = authContext?.transportSecurityType === 'ssl' ? authContext.sslPeerCertificate : undefined;
  const authorization = metadata.get('authorization')[0];
  return {
    address,
    loopback: isLoopbackAddress(hostOfGrpcPeer(address)),
    tlsIdentities: verifiedIdentities(certificate, certificate !== undefined),
    authorization: typeof authorization === 'string' ? authorization : null,
    host: call.getHost(),
  };
}
