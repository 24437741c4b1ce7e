// The names a verified client certificate gives its holder, matched against
// tls_identity in the callers file structurally, never by joining strings:
//   - a URI SAN (a SPIFFE ID, spiffe://trust-domain/path) is the URI itself,
//     and a SPIFFE ID comes only from a URI SAN, never from a common name;
//   - the subject is its attribute list (in the certificate's order), each
//     value escaped as RFC 4514 says, so `O="Example,CN=billing"` can never
//     read as `O=Example,CN=billing`.
// Both sides go through the same parse and canonical form: the callers file
// (canonicalTlsIdentity, at load) and the certificate (tlsIdentities, per
// connection). A URI always starts with its scheme and ":", a subject with
// an attribute type and "=", so the two kinds can never name each other.
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

const URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;

type Attribute = readonly [type: string, value: string];

/**
 * Splits an RFC 4514-style name into attributes at unescaped ",", "+" and
 * line breaks (OpenSSL's multi-line form), undoing "\," and "\2C" escapes;
 * undefined when it is not one.
 */
function parseDistinguishedName(text: string): Attribute[] | undefined {
  const attributes: Attribute[] = [];
  let type: string | undefined;
  let bytes: number[] = [];
  const flush = (): boolean => {
    if (type === undefined) return false;
    const value = Buffer.from(bytes).toString('utf8').trim();
    if (!/^[A-Za-z][A-Za-z0-9-]*$|^\d+(\.\d+)+$/.test(type) || value === '') return false;
    attributes.push([type.toUpperCase(), value]);
    type = undefined;
    bytes = [];
    return true;
  };
  let pending = '';
  for (let index = 0; index < text.length; index += 1) {
    const char = text[index]!;
    if (type === undefined) {
      if (char === '=') {
        type = pending.trim();
        pending = '';
      } else if (char === ',' || char === '+' || char === '\n' || char === '\\') {
        return undefined;
      } else {
        pending += char;
      }
      continue;
    }
    if (char === '\\') {
      const hex = /^[0-9A-Fa-f]{2}/.exec(text.slice(index + 1, index + 3));
      if (hex !== null) {
        bytes.push(Number.parseInt(hex[0], 16));
        index += 2;
      } else if (index + 1 < text.length) {
        bytes.push(...Buffer.from(text[index + 1]!, 'utf8'));
        index += 1;
      } else {
        return undefined;
      }
    } else if (char === ',' || char === '+' || char === '\n') {
      if (!flush()) return undefined;
    } else {
      bytes.push(...Buffer.from(char, 'utf8'));
    }
  }
  if (!flush() || pending.trim() !== '') return undefined;
  return attributes;
}

/** RFC 4514 §2.4 escaping, plus control characters as \XX: one string per attribute list. */
function escapeValue(value: string): string {
  let escaped = '';
  for (const char of value) {
    if (',+"\\<>;='.includes(char)) escaped += `\\${char}`;
    // eslint-disable-next-line no-control-regex
    else if (/[\u0000-\u001f\u007f]/.test(char)) escaped += `\\${char.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`;
    else escaped += char;
  }
  if (escaped.startsWith('#') || escaped.startsWith(' ')) escaped = `\\${escaped}`;
  if (escaped.endsWith(' ')) escaped = `${escaped.slice(0, -1)}\\ `;
  return escaped;
}

function canonicalSubject(attributes: readonly Attribute[]): string {
  return attributes.map(([type, value]) => `${type}=${escapeValue(value)}`).join(',');
}

/**
 * The callers file's tls_identity in the form certificates are matched by:
 * a URI as it is, a subject (`O=Example,CN=billing`) in canonical form.
 * Throws for anything else, such as a bare common name.
 */
export function canonicalTlsIdentity(configured: string): string {
  const text = configured.trim();
  if (URI.test(text)) return text;
  const attributes = parseDistinguishedName(text);
  if (attributes === undefined || attributes.length === 0) {
    throw new Error('must be a URI SAN such as a SPIFFE ID (spiffe://trust-domain/path) or a subject such as O=Example,CN=billing');
  }
  return canonicalSubject(attributes);
}

/** The URIs among a certificate's SANs, from Node.js's text form (values with commas come JSON-quoted). */
function uriSubjectAltNames(subjectAltName: string | undefined): string[] {
  const uris: string[] = [];
  const text = subjectAltName ?? '';
  const entry = /([A-Za-z][A-Za-z ]*):/y;
  let position = 0;
  while (position < text.length) {
    entry.lastIndex = position;
    const match = entry.exec(text);
    if (match === null) break;
    position = entry.lastIndex;
    let value: string;
    if (text[position] === '"') {
      const quoted = /"(?:[^"\\]|\\.)*"/y;
      quoted.lastIndex = position;
      const found = quoted.exec(text);
      if (found === null) break;
      value = JSON.parse(found[0]) as string;
      position = quoted.lastIndex;
    } else {
      const end = text.indexOf(', ', position);
      value = text.slice(position, end === -1 ? text.length : end);
      position = end === -1 ? text.length : end;
    }
    if (text.startsWith(', ', position)) position += 2;
    if (match[1] === 'URI' && URI.test(value)) uris.push(value);
  }
  return uris;
}

// Certificates are few and reused across calls; parsing one costs tens of microseconds.
const MAX_CACHED_CERTIFICATES = 1_000;
const cached = new Map<string, string[]>();

/** The identities of a certificate the TLS layer verified: its URI SANs, then its subject. */
export function tlsIdentities(certificate: PeerCertificate | undefined): string[] {
  if (certificate === undefined || certificate.raw === undefined || certificate.raw.length === 0) return [];
  const key = certificate.fingerprint256;
  const known = key === undefined ? undefined : cached.get(key);
  if (known !== undefined) return known;
  const parsed = new X509Certificate(certificate.raw);
  const identities = uriSubjectAltNames(parsed.subjectAltName);
  const subject = parseDistinguishedName(parsed.subject);
  if (subject !== undefined && subject.length > 0) identities.push(canonicalSubject(subject));
  if (key !== undefined) {
    if (cached.size >= MAX_CACHED_CERTIFICATES) cached.clear();
    cached.set(key, identities);
  }
  return identities;
}
