// What each TLS handshake on either port settled: the key exchange group it
// negotiated (so an operator sees how much classical key exchange is still in
// use), or why it failed (so a client refused by TALLY_TLS_GROUPS shows up in
// the log and metrics rather than only at the client).
//
// Node.js tells a server nothing about the negotiated group
// (getEphemeralKeyInfo answers only on the client side), but the TLS session
// OpenSSL keeps for the connection records it: SSL_SESSION's ASN.1 form
// carries the group's IANA code point in field [19] (kex_group). The session
// also holds key material, so it is read here, the one number taken out, and
// dropped; it goes nowhere else.
import type { Server as TlsServer, TLSSocket } from 'node:tls';

export type TlsPort = 'grpc' | 'http';

export type TlsHandshakeOutcome =
  | { port: TlsPort; ok: true; group: string }
  | { port: TlsPort; ok: false; reason: 'no_shared_group' | 'other'; error: Error };

export type TlsHandshakeObserver = (outcome: TlsHandshakeOutcome) => void;

/** TLS Supported Groups registry (IANA) names, as OpenSSL spells them, for the groups OpenSSL 3.5 offers. */
const GROUP_NAMES: ReadonlyMap<number, string> = new Map([
  [0x0017, 'secp256r1'],
  [0x0018, 'secp384r1'],
  [0x0019, 'secp521r1'],
  [0x001d, 'X25519'],
  [0x001e, 'X448'],
  [0x0100, 'ffdhe2048'],
  [0x0101, 'ffdhe3072'],
  [0x0102, 'ffdhe4096'],
  [0x0103, 'ffdhe6144'],
  [0x0104, 'ffdhe8192'],
  [0x0200, 'MLKEM512'],
  [0x0201, 'MLKEM768'],
  [0x0202, 'MLKEM1024'],
  [0x11eb, 'SecP256r1MLKEM768'],
  [0x11ec, 'X25519MLKEM768'],
  [0x11ed, 'SecP384r1MLKEM1024'],
]);

const KEX_GROUP_TAG = 0xa0 | 19; // [19] EXPLICIT, constructed

/** One DER element at offset: its tag, where its content starts, and its length. */
function element(der: Buffer, offset: number): { tag: number; start: number; length: number } | undefined {
  if (offset + 2 > der.length) return undefined;
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 3 || start + bytes > der.length) return undefined;
    length = der.readUIntBE(start, bytes);
    start += bytes;
  }
  return start + length <= der.length ? { tag, start, length } : undefined;
}

/** The negotiated group's name from an OpenSSL session (DER), "unknown" when it names none, "other" for a code point not listed. */
function negotiatedGroup(session: Buffer | undefined): string {
  if (session === undefined) return 'unknown';
  const outer = element(session, 0);
  if (outer === undefined || outer.tag !== 0x30) return 'unknown';
  for (let offset = outer.start; offset < outer.start + outer.length; ) {
    const field = element(session, offset);
    if (field === undefined) return 'unknown';
    if (field.tag === KEX_GROUP_TAG) {
      const integer = element(session, field.start);
      if (integer === undefined || integer.tag !== 0x02 || integer.length === 0 || integer.length > 3) return 'unknown';
      return GROUP_NAMES.get(session.readUIntBE(integer.start, integer.length)) ?? 'other';
    }
    offset = field.start + field.length;
  }
  return 'unknown';
}

// OpenSSL's reasons for "the client offered no group this server accepts" (TLS 1.3, TLS 1.2).
const NO_SHARED_GROUP = new Set(['ERR_SSL_NO_SUITABLE_KEY_SHARE', 'ERR_SSL_NO_SHARED_GROUPS']);

/** Reports every handshake the server completes or fails. */
export function observeTlsHandshakes(server: TlsServer, port: TlsPort, observe: TlsHandshakeObserver): void {
  server.on('secureConnection', (socket: TLSSocket) => {
    observe({ port, ok: true, group: negotiatedGroup(socket.getSession()) });
  });
  server.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
    observe({ port, ok: false, reason: NO_SHARED_GROUP.has(error.code ?? '') ? 'no_shared_group' : 'other', error });
    // As without a listener: a failed handshake leaves no connection behind.
    socket.destroy();
  });
}
