/** The one client the peer knows: it obtains tokens and introspects them, authenticated by client_secret_basic. */
export const oidcProviderClient = {
  id: 'bench-client',
  // Only ever on loopback, for the life of one bench run.
  secret: 'bench-client-secret-for-loopback-only',
} as const;

/** The Authorization header client_secret_basic sends (RFC 6749 2.3.1: form-encoded, then Basic). */
export function basicAuthorization(): string {
  const credentials = `${encodeURIComponent(oidcProviderClient.id)}:${encodeURIComponent(oidcProviderClient.secret)}`;
  return `Basic ${Buffer.from(credentials).toString('base64')}`;
}
