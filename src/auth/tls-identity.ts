// The names a verified client certificate gives its holder, to match against
// tls_identity in the callers file: SPIFFE IDs (URI SANs) first, then the
// subject as an RFC 4514-style string, and the bare common name.
import type { PeerCertificate } from 'node:tls';

export function tlsIdentities(certificate: PeerCertificate | undefined): string[] {
  if (certificate === undefined || Object.keys(certificate).length === 0) return [];
  const identities: string[] = [];
  for (const entry of (certificate.subjectaltname ?? '').split(/,\s*/)) {
    if (entry.startsWith('URI:')) identities.push(entry.slice('URI:'.length));
  }
  const subject = certificate.subject as unknown as Record<string, string | string[]> | undefined;
  if (subject !== undefined) {
    const parts = Object.entries(subject).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).map((one) => `${name}=${one}`));
    if (parts.length > 0) identities.push(parts.join(','));
    const commonName = subject.CN;
    if (typeof commonName === 'string') identities.push(commonName);
  }
  return identities;
}
