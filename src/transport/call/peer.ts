// Who is on the other end of a call, as the transport sees it: the address,
// whether it is loopback (protected mode), and the identities of a verified
// client certificate (mTLS). Each server fills this in; guard.ts decides.
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { tlsIdentities } from '../../auth/tls-identity.js';

export interface PeerInfo {
  /** host:port, for logs. */
  address: string;
  loopback: boolean;
  /** Empty without a verified client certificate. */
  tlsIdentities: readonly string[];
  /**
   * The authorization header or metadata, when the transport read it itself
   * (null: none sent); undefined: read it from the handler context's headers.
   */
  authorization?: string | null;
  /** The Host header or :authority the client named (protected mode checks it); undefined when none came. */
  host?: string;
}

/** 127.0.0.0/8, ::1 and IPv4-mapped loopback; names are never trusted. */
export function isLoopbackAddress(host: string | undefined): boolean {
  if (host === undefined) return false;
  const bare = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || /^::ffff:127\./i.test(bare);
  return false;
}

/** Splits grpc-js's peer string ("ipv4:1.2.3.4:5", "ipv6:[::1]:5", "1.2.3.4:5"). */
export function hostOfGrpcPeer(peer: string): string | undefined {
  const address = peer.replace(/^ipv[46]:/, '');
  if (address.startsWith('[')) return address.slice(0, address.indexOf(']') + 1);
  const lastColon = address.lastIndexOf(':');
  return lastColon > 0 ? address.slice(0, lastColon) : address || undefined;
}

/** Identities of a client certificate the TLS layer verified; none for an unverified one. */
export function verifiedIdentities(certificate: PeerCertificate | undefined, authorized: boolean): string[] {
  return authorized ? tlsIdentities(certificate) : [];
}
